# Datadog storage for otel-audit records: where they are kept, for how long, and who may read them.
#
#   index   "otel-audit"  source:otel_audit, searchable for var.searchable_retention_days (>= 90)
#   archive S3 bucket     every audit record, kept var.archive_retention_days (>= 365), WORM,
#                         rehydratable into the index for older investigations
#   access  role "otel-audit-reader" reads them; every role in var.other_log_reader_role_ids
#           gets a restriction query that hides them (Datadog restriction queries grant: a role
#           with one sees only what matches it)
#
# Defaults meet PCI DSS 10.5.1: 12 months retained (archive), the last 3 immediately searchable
# (index). Apply: docs/collector-deployment.md, "Audit storage as code".

terraform {
  required_version = ">= 1.5"
  required_providers {
    datadog = {
      source  = "DataDog/datadog"
      version = "~> 3.60"
    }
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "datadog" {
  api_url = var.datadog_api_url
  # DD_API_KEY / DD_APP_KEY from the environment: never in state-tracked variables.
}

provider "aws" {
  region = var.aws_region
}

data "aws_caller_identity" "current" {}

# ---------------------------------------------------------------------------------------------
# Searchable: the logs index

resource "datadog_logs_index" "audit" {
  name           = var.index_name
  retention_days = var.searchable_retention_days
  filter {
    query = "source:otel_audit"
  }
  # Audit records are never sampled away: no daily quota, no exclusion filter.
  disable_daily_limit = true
}

# Audit records go to this index before any catch-all index.
resource "datadog_logs_index_order" "audit_first" {
  name    = "otel-audit-first"
  indexes = concat([datadog_logs_index.audit.id], var.other_index_names)
}

# ---------------------------------------------------------------------------------------------
# Retained: the archive (S3, object lock)

resource "aws_kms_key" "archive" {
  description             = "otel-audit Datadog log archive"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_s3_bucket" "archive" {
  #checkov:skip=CKV_AWS_144:cross-region replication is a site decision (var.replica_bucket_arn in your fork)
  #checkov:skip=CKV2_AWS_62:no consumer listens for object events on the archive
  #checkov:skip=CKV_AWS_18:server access logging goes to the account's central log bucket, not managed here
  bucket              = var.archive_bucket_name
  object_lock_enabled = true
}

resource "aws_s3_bucket_versioning" "archive" {
  bucket = aws_s3_bucket.archive.id
  versioning_configuration {
    status = "Enabled"
  }
}

# WORM: an archived audit record cannot be changed or deleted before it is due (PCI DSS 10.3.3/10.5).
resource "aws_s3_bucket_object_lock_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = var.archive_retention_days
    }
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.archive.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "archive" {
  bucket                  = aws_s3_bucket.archive.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    id     = "retain-then-expire"
    status = "Enabled"
    filter {}
    transition {
      days          = var.searchable_retention_days
      storage_class = "GLACIER_IR"
    }
    expiration {
      days = var.archive_retention_days + 1
    }
    noncurrent_version_expiration {
      noncurrent_days = var.archive_retention_days + 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "datadog_logs_archive" "audit" {
  name         = "otel-audit"
  query        = "source:otel_audit"
  include_tags = true
  s3_archive {
    bucket     = aws_s3_bucket.archive.bucket
    path       = "/otel-audit"
    account_id = data.aws_caller_identity.current.account_id
    role_name  = var.datadog_archive_role_name
  }
  rehydration_max_scan_size_in_gb = var.rehydration_max_scan_size_in_gb
}

# ---------------------------------------------------------------------------------------------
# Who may read

data "datadog_permissions" "all" {}

resource "datadog_role" "audit_reader" {
  name = var.auditor_role_name
  permission {
    id = data.datadog_permissions.all.permissions.logs_read_data
  }
  permission {
    id = data.datadog_permissions.all.permissions.logs_read_index_data
  }
  permission {
    id = data.datadog_permissions.all.permissions.logs_read_archives
  }
}

resource "datadog_logs_restriction_query" "auditors_read_audit" {
  restriction_query = "source:otel_audit"
  role_ids          = [datadog_role.audit_reader.id]
}

resource "datadog_logs_restriction_query" "others_do_not" {
  restriction_query = "-source:otel_audit"
  role_ids          = var.other_log_reader_role_ids
}
