// Package auditsplunkhecexporter is splunk_hec whose refusals (HTTP 4xx, e.g. 403 "Invalid
// token" while a HEC token is rotated) are retried from the persistent queue instead of dropped.
package auditsplunkhecexporter // import "github.com/otel-audit/otelcol-audit/components/auditsplunkhecexporter"

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/splunkhecexporter"
	"go.opentelemetry.io/collector/exporter"

	"github.com/otel-audit/otelcol-audit/components/refusal"
)

// NewFactory creates the audit_splunk_hec exporter factory.
func NewFactory() exporter.Factory {
	return refusal.Wrap("audit_splunk_hec", splunkhecexporter.NewFactory())
}
