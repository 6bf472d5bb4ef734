// Package auditotlphttpexporter is otlp_http whose backend refusals (HTTP 4xx) are retried from
// the persistent queue instead of dropped (see package refusal).
package auditotlphttpexporter // import "github.com/otel-audit/otelcol-audit/components/auditotlphttpexporter"

import (
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"

	"github.com/otel-audit/otelcol-audit/components/refusal"
)

// NewFactory creates the audit_otlp_http exporter factory.
func NewFactory() exporter.Factory {
	return refusal.Wrap("audit_otlp_http", otlphttpexporter.NewFactory())
}
