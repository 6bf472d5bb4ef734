variable "datadog_api_url" {
  description = "API URL of your Datadog site, e.g. https://api.datadoghq.eu/"
  type        = string
  default     = "https://api.datadoghq.com/"
}

variable "aws_region" {
  description = "Region of the archive bucket"
  type        = string
}

variable "index_name" {
  description = "Logs index that holds the audit records"
  type        = string
  default     = "otel-audit"
}

variable "other_index_names" {
  description = "Your other indexes, in their order, after the audit index"
  type        = list(string)
  default     = ["main"]
}

variable "searchable_retention_days" {
  description = "Days audit records stay searchable in the index (PCI DSS 10.5.1: at least 3 months immediately available)"
  type        = number
  default     = 90
  validation {
    condition     = var.searchable_retention_days >= 90
    error_message = "PCI DSS 10.5.1 wants the most recent three months immediately available: searchable_retention_days >= 90."
  }
}

variable "archive_retention_days" {
  description = "Days audit records are kept in the archive (PCI DSS 10.5.1: at least 12 months)"
  type        = number
  default     = 396
  validation {
    condition     = var.archive_retention_days >= 365
    error_message = "PCI DSS 10.5.1 wants 12 months of audit history: archive_retention_days >= 365."
  }
}

variable "archive_bucket_name" {
  description = "S3 bucket for the Datadog log archive of audit records"
  type        = string
}

variable "datadog_archive_role_name" {
  description = "IAM role Datadog assumes to write the archive (Datadog AWS integration)"
  type        = string
  default     = "DatadogIntegrationRole"
}

variable "rehydration_max_scan_size_in_gb" {
  description = "Upper bound of one rehydration from the archive"
  type        = number
  default     = 100
}

variable "auditor_role_name" {
  description = "Datadog role whose members may read audit records"
  type        = string
  default     = "otel-audit-reader"
}

variable "other_log_reader_role_ids" {
  description = "Ids of the other roles that read logs: they get a restriction query that hides audit records"
  type        = list(string)
}
