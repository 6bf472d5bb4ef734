output "collector_basic_auth" {
  description = "GRAFANA_CLOUD_BASIC_AUTH for grafana-cloud.yaml: base64 of <instance id>:<token>"
  value       = base64encode("${data.grafana_cloud_stack.audit.logs_user_id}:${grafana_cloud_access_policy_token.collector.token}")
  sensitive   = true
}

output "otlp_endpoint" {
  description = "GRAFANA_CLOUD_OTLP_ENDPOINT"
  value       = "${data.grafana_cloud_stack.audit.otlp_url}/otlp"
}
