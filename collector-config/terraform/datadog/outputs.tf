output "audit_index" {
  value = datadog_logs_index.audit.name
}

output "auditor_role_id" {
  value = datadog_role.audit_reader.id
}

output "archive_bucket" {
  value = aws_s3_bucket.archive.bucket
}
