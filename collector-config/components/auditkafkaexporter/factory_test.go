package auditkafkaexporter

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.opentelemetry.io/collector/consumer/consumererror"
)

func TestBrokerRefusals(t *testing.T) {
	// What kafkaexporter v0.145.0 returns for a non-retriable broker error: the kerr error,
	// wrapped with the topic, joined, and marked permanent.
	for _, code := range []*kerr.Error{kerr.TopicAuthorizationFailed, kerr.MessageTooLarge, kerr.SaslAuthenticationFailed,
		kerr.ClusterAuthorizationFailed} {
		err := consumererror.NewPermanent(errors.Join(fmt.Errorf("error exporting to topic %q: %w", "otel-audit-logs", code)))
		reason, _, ok := BrokerRefusal(err)
		if !ok || reason != "Kafka "+code.Message {
			t.Fatalf("%s: %q %v", code.Message, reason, ok)
		}
	}
	// Not refusals: an encoding error found before producing, and a retryable error.
	if _, _, ok := BrokerRefusal(consumererror.NewPermanent(errors.New("error exporting to topic \"t\": cannot marshal"))); ok {
		t.Fatal("a marshal error is not a refusal")
	}
	if _, _, ok := BrokerRefusal(fmt.Errorf("x: %w", kerr.NotLeaderForPartition)); ok {
		t.Fatal("a retryable error is left to the retry")
	}
}
