variable "stack_slug" {
  description = "Slug of the Grafana Cloud stack that receives the audit records"
  type        = string
}

variable "region" {
  description = "Region of the stack, e.g. prod-eu-west-2"
  type        = string
}

variable "audit_stream_selector" {
  description = "LogQL stream selector of the audit streams (labels set by loki.yaml)"
  type        = string
  default     = "{audit_category=~\".+\"}"
}

variable "collector_token_expires_at" {
  description = "Expiry of the collector's token (RFC 3339); rotate before it - refused records wait in the queue"
  type        = string
  default     = null
}

variable "auditor_token_expires_at" {
  description = "Expiry of the auditors' token (RFC 3339)"
  type        = string
  default     = null
}
