package refusal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/splunkhecexporter"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/pdata/plog"
)

func oneRecord() plog.Logs {
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("login failure")
	return ld
}

func backend(t *testing.T, status int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	t.Cleanup(srv.Close)
	return srv.URL
}

// export sends one record through an exporter made by f with queue and retries off, so the
// error the queue would see comes back here.
func export(t *testing.T, f exporter.Factory, url string) error {
	cfg := f.CreateDefaultConfig()
	switch c := cfg.(type) {
	case *otlphttpexporter.Config:
		c.LogsEndpoint = url
		c.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
		c.RetryConfig.Enabled = false
	case *splunkhecexporter.Config:
		c.Endpoint = url
		c.Token = "t"
		c.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
		c.BackOffConfig.Enabled = false
	default:
		t.Fatalf("unexpected config %T", cfg)
	}
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = exp.Shutdown(context.Background()) }()
	return exp.ConsumeLogs(context.Background(), oneRecord())
}

func TestRefusalsAreRetriedWhereUpstreamDropsThem(t *testing.T) {
	for _, tc := range []struct {
		name     string
		upstream exporter.Factory
		statuses []int // what the upstream exporter treats as permanent
	}{
		{"otlp_http", otlphttpexporter.NewFactory(), []int{400, 401, 403, 404, 413, 500}},
		{"splunk_hec", splunkhecexporter.NewFactory(), []int{400, 401, 403}},
	} {
		for _, status := range tc.statuses {
			url := backend(t, status)
			if err := export(t, tc.upstream, url); !consumererror.IsPermanent(err) {
				t.Fatalf("%s %d: upstream error %v is not permanent any more: the wrapper may be unneeded", tc.name, status, err)
			}
			wrapped := Wrap("audit_"+tc.name, tc.upstream)
			err := export(t, wrapped, url)
			if err == nil || consumererror.IsPermanent(err) {
				t.Fatalf("%s %d: wrapped error %v must be retryable", tc.name, status, err)
			}
		}
	}
}

func TestOtherPermanentErrorsStayPermanent(t *testing.T) {
	if _, ok := refusalStatus(consumererror.NewPermanent(errString("cannot marshal the request"))); ok {
		t.Fatal("an error without an HTTP status is not a refusal")
	}
	if code, ok := refusalStatus(consumererror.NewPermanent(errString(`HTTP "/services/collector/event" 403 "Forbidden"`))); !ok || code != 403 {
		t.Fatalf("splunk text: %d %v", code, ok)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
