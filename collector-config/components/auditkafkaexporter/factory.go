// Package auditkafkaexporter is the kafka exporter whose broker refusals (a non-retriable Kafka
// error: TOPIC_AUTHORIZATION_FAILED while ACLs are changed, SASL_AUTHENTICATION_FAILED while a
// credential is rotated, MESSAGE_TOO_LARGE until the topic's limit is raised, ...) are retried
// from the persistent queue instead of dropped (see package refusal).
package auditkafkaexporter // import "github.com/otel-audit/otelcol-audit/components/auditkafkaexporter"

import (
	"errors"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.uber.org/zap"

	"github.com/otel-audit/otelcol-audit/components/refusal"
)

// NewFactory creates the audit_kafka exporter factory.
func NewFactory() exporter.Factory {
	return refusal.WrapClassified("audit_kafka", kafkaexporter.NewFactory(), BrokerRefusal)
}

// BrokerRefusal: a permanent error that is a Kafka protocol error (the broker's answer, or the
// client's own MESSAGE_TOO_LARGE). Errors found before producing (a record that cannot be
// encoded) carry no Kafka error code and stay permanent.
func BrokerRefusal(err error) (string, []zap.Field, bool) {
	if !consumererror.IsPermanent(err) {
		return "", nil, false
	}
	var kerrErr *kerr.Error
	if !errors.As(err, &kerrErr) {
		return "", nil, false
	}
	return "Kafka " + kerrErr.Message, []zap.Field{zap.String("kafka_error", kerrErr.Message), zap.Int16("kafka_error_code", kerrErr.Code)}, true
}
