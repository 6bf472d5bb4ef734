# Grafana Cloud access for otel-audit records: a token that can only write logs (the
# collector's GRAFANA_CLOUD_BASIC_AUTH), and a read policy for auditors limited by label
# selector to the audit streams (loki.yaml's labels audit_category / audit_outcome).
#
# Retention: Grafana Cloud Logs keeps what your stack's plan says; ask for >= 13 months on the
# stack that receives audit records (PCI DSS 10.5.1: 12 months, 3 immediately searchable), or run
# Loki yourself with collector-config/helm/loki-values.yaml (retention per stream).

terraform {
  required_version = ">= 1.5"
  required_providers {
    grafana = {
      source  = "grafana/grafana"
      version = "~> 3.0"
    }
  }
}

provider "grafana" {
  # GRAFANA_CLOUD_ACCESS_POLICY_TOKEN (a token with accesspolicies:write) from the environment.
}

data "grafana_cloud_stack" "audit" {
  slug = var.stack_slug
}

# The collector: writes logs, reads nothing.
resource "grafana_cloud_access_policy" "collector_write" {
  region       = var.region
  name         = "otel-audit-collector"
  display_name = "otel-audit collector (logs:write)"
  scopes       = ["logs:write"]
  realm {
    type       = "stack"
    identifier = data.grafana_cloud_stack.audit.id
  }
}

resource "grafana_cloud_access_policy_token" "collector" {
  region           = var.region
  access_policy_id = grafana_cloud_access_policy.collector_write.policy_id
  name             = "otel-audit-collector"
  expires_at       = var.collector_token_expires_at
}

# Auditors: read the audit streams only (label-based access).
resource "grafana_cloud_access_policy" "auditor_read" {
  region       = var.region
  name         = "otel-audit-auditor"
  display_name = "otel-audit auditors (logs:read, audit streams)"
  scopes       = ["logs:read"]
  realm {
    type       = "stack"
    identifier = data.grafana_cloud_stack.audit.id
    label_policy {
      selector = var.audit_stream_selector
    }
  }
}

resource "grafana_cloud_access_policy_token" "auditor" {
  region           = var.region
  access_policy_id = grafana_cloud_access_policy.auditor_read.policy_id
  name             = "otel-audit-auditor"
  expires_at       = var.auditor_token_expires_at
}
