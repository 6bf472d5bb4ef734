output "hec_token" {
  description = "The gateway's SPLUNK_HEC_TOKEN"
  value       = splunk_inputs_http_event_collector.gateway.token
  sensitive   = true
}

output "audit_index" {
  value = splunk_indexes.audit.name
}
