# Splunk storage for otel-audit records: the `audit` index, its retention, the HEC token that
# may only write to it, and the one role that may search it.
#
#   index  var.index_name ("audit"): frozenTimePeriodInSecs = var.retention_days (>= 365) days;
#          everything younger is searchable (hot/warm/cold), older buckets are frozen to
#          var.cold_to_frozen_dir when set (an archive you keep), deleted otherwise
#   HEC    token "otel-audit-gateway": index audit only (splunk.yaml's SPLUNK_HEC_TOKEN)
#   role   "otel_audit_reader": may search the audit index and nothing else; no other role is
#          given it here (check your roles' srchIndexesAllowed for "*" - docs/collector-deployment.md)
#
# Defaults meet PCI DSS 10.5.1: 12 months retained and all of it (more than the last 3 months)
# immediately searchable.

terraform {
  required_version = ">= 1.5"
  required_providers {
    splunk = {
      source  = "splunk/splunk"
      version = "~> 1.4"
    }
  }
}

provider "splunk" {
  url                  = var.splunk_management_url
  insecure_skip_verify = false
  # SPLUNK_USERNAME / SPLUNK_PASSWORD (or SPLUNK_AUTH_TOKEN) from the environment.
}

locals {
  day_seconds = 86400
}

resource "splunk_indexes" "audit" {
  name                       = var.index_name
  datatype                   = "event"
  frozen_time_period_in_secs = var.retention_days * local.day_seconds
  max_total_data_size_mb     = var.max_total_data_size_mb
  cold_to_frozen_dir         = var.cold_to_frozen_dir
  # Keep the audit trail's integrity checkable inside Splunk as well (PCI DSS 10.3.2).
  enable_data_integrity_control = true
}

resource "splunk_inputs_http_event_collector" "gateway" {
  name       = "otel-audit-gateway"
  index      = splunk_indexes.audit.name
  indexes    = [splunk_indexes.audit.name]
  source     = "otel-audit"
  sourcetype = "otel:audit"
  disabled   = false
  use_ack    = 0
}

resource "splunk_authorization_roles" "audit_reader" {
  name                   = var.auditor_role_name
  default_app            = "search"
  imported_roles         = ["user"]
  search_indexes_allowed = [splunk_indexes.audit.name]
  search_indexes_default = [splunk_indexes.audit.name]
  capabilities           = ["search"]
}
