variable "splunk_management_url" {
  description = "Splunk management endpoint host:port, e.g. splunk.example.com:8089"
  type        = string
}

variable "index_name" {
  description = "Index that holds the audit records (splunk.yaml's SPLUNK_INDEX)"
  type        = string
  default     = "audit"
}

variable "retention_days" {
  description = "Days before a bucket is frozen (PCI DSS 10.5.1: at least 12 months; all of it stays searchable)"
  type        = number
  default     = 396
  validation {
    condition     = var.retention_days >= 365
    error_message = "PCI DSS 10.5.1 wants 12 months of audit history: retention_days >= 365."
  }
}

variable "max_total_data_size_mb" {
  description = "Size cap of the index; size it so that retention_days fit (Splunk freezes the oldest data at the cap)"
  type        = number
  default     = 500000
}

variable "cold_to_frozen_dir" {
  description = "Where frozen buckets are archived instead of deleted (empty: deleted when frozen)"
  type        = string
  default     = ""
}

variable "auditor_role_name" {
  description = "Role whose members may search the audit index"
  type        = string
  default     = "otel_audit_reader"
}
