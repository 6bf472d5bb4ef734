// Package refusal wraps a collector exporter so that a backend's refusal (any HTTP 4xx: a
// rotated or revoked token, 413, ...; and a 5xx the upstream exporter gives up on, like
// otlp_http's 500) is retried from the persistent sending queue until the backend accepts,
// instead of being treated as a permanent error and dropped.
//
// Why: exporterhelper drops a request on a permanent error, and otlp_http / splunk_hec report
// 400/401/403/413 as permanent. For audit records a refused key is a time to wait, not a
// reason to discard. The wrapped exporter keeps its own config (same YAML keys); its
// sending_queue and retry_on_failure move to the wrapper, the inner exporter runs without them.
package refusal // import "github.com/otel-audit/otelcol-audit/components/refusal"

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

const scopeName = "github.com/otel-audit/otelcol-audit/components/refusal"

var (
	queueType = reflect.TypeOf(configoptional.Optional[exporterhelper.QueueBatchConfig]{})
	retryType = reflect.TypeOf(configretry.BackOffConfig{})
	// otlp_http: "... responded with HTTP Status Code 403"; splunk_hec: `HTTP "/path" 403 "Forbidden"`.
	statusPattern = regexp.MustCompile(`HTTP Status Code (\d{3})|HTTP "[^"]*" (\d{3}) `)
)

// Classifier tells whether an error of the inner exporter is a backend's refusal (retried from
// the queue instead of dropped): what to call it in the returned error ("HTTP 403"), and the
// log fields that say so.
type Classifier func(err error) (reason string, fields []zap.Field, refused bool)

// Wrap returns a logs exporter factory of type typ with inner's config and exporter; a
// permanent error that carries an HTTP error status is a refusal.
func Wrap(typ string, inner exporter.Factory) exporter.Factory {
	return WrapClassified(typ, inner, HTTPRefusal)
}

// WrapClassified is Wrap with another idea of what a refusal is (e.g. a Kafka broker's
// non-retriable answer).
func WrapClassified(typ string, inner exporter.Factory, classify Classifier) exporter.Factory {
	w := &wrapper{inner: inner, classify: classify}
	return exporter.NewFactory(component.MustNewType(typ), inner.CreateDefaultConfig,
		exporter.WithLogs(w.createLogs, component.StabilityLevelBeta))
}

// HTTPRefusal: a permanent error with an HTTP error status (4xx, or a 5xx the upstream exporter
// does not retry) from the backend.
func HTTPRefusal(err error) (string, []zap.Field, bool) {
	code, ok := refusalStatus(err)
	if !ok {
		return "", nil, false
	}
	return "HTTP " + strconv.Itoa(code), []zap.Field{zap.Int("http_status", code)}, true
}

type wrapper struct {
	inner    exporter.Factory
	classify Classifier
}

func (w *wrapper) createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	queue, retry, innerCfg, err := split(cfg)
	if err != nil {
		return nil, err
	}
	innerSet := set
	innerSet.ID = component.NewIDWithName(w.inner.Type(), innerName(set.ID))
	inner, err := w.inner.CreateLogs(ctx, innerSet, innerCfg)
	if err != nil {
		return nil, err
	}
	g, err := newGuard(set, inner, w.classify)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, g.push,
		exporterhelper.WithStart(inner.Start),
		exporterhelper.WithShutdown(inner.Shutdown),
		exporterhelper.WithCapabilities(inner.Capabilities()),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: 0}), // the inner client times out
		exporterhelper.WithRetry(retry),
		exporterhelper.WithQueue(queue))
}

// innerName keeps the inner exporter's own telemetry apart from the wrapper's.
func innerName(id component.ID) string {
	if id.Name() == "" {
		return "inner"
	}
	return id.Name() + "-inner"
}

// split takes the queue and retry settings out of a copy of the exporter's config.
func split(cfg component.Config) (configoptional.Optional[exporterhelper.QueueBatchConfig], configretry.BackOffConfig, component.Config, error) {
	var queue configoptional.Optional[exporterhelper.QueueBatchConfig]
	var retry configretry.BackOffConfig
	ptr := reflect.ValueOf(cfg)
	if ptr.Kind() != reflect.Pointer || ptr.Elem().Kind() != reflect.Struct {
		return queue, retry, nil, fmt.Errorf("refusal: config %T is not a pointer to a struct", cfg)
	}
	cp := reflect.New(ptr.Elem().Type())
	cp.Elem().Set(ptr.Elem())
	foundQueue, foundRetry := false, false
	for i := 0; i < cp.Elem().NumField(); i++ {
		field := cp.Elem().Field(i)
		switch field.Type() {
		case queueType:
			queue = field.Interface().(configoptional.Optional[exporterhelper.QueueBatchConfig])
			field.Set(reflect.Zero(queueType)) // no inner queue: errors come back to the wrapper
			foundQueue = true
		case retryType:
			retry = field.Interface().(configretry.BackOffConfig)
			disabled := retry
			disabled.Enabled = false
			field.Set(reflect.ValueOf(disabled))
			foundRetry = true
		}
	}
	if !foundQueue || !foundRetry {
		return queue, retry, nil, fmt.Errorf("refusal: config %T has no sending_queue/retry_on_failure to take over", cfg)
	}
	return queue, retry, cp.Interface().(component.Config), nil
}

// guard turns a backend's 4xx refusal into a retryable error and says so.
type guard struct {
	inner    exporter.Logs
	classify Classifier
	logger   *zap.Logger
	refused  metric.Int64Counter
	attrs    metric.MeasurementOption // exporter=<id>: several wrapped exporters share the names
	mu       sync.Mutex
	pending  map[plog.Logs]int // refused requests (a retry pushes the same Logs) -> records
	waiting  atomic.Int64      // records in refused requests since the backend last accepted one
	refusing atomic.Bool
}

func newGuard(set exporter.Settings, inner exporter.Logs, classify Classifier) (*guard, error) {
	g := &guard{inner: inner, classify: classify, logger: set.Logger, pending: map[plog.Logs]int{},
		attrs: metric.WithAttributeSet(attribute.NewSet(attribute.String("exporter", set.ID.String())))}
	meter := set.MeterProvider.Meter(scopeName)
	var err error
	g.refused, err = meter.Int64Counter("otelcol_audit_exporter_refused_log_records",
		metric.WithDescription("Log records a backend refused (HTTP 4xx, a Kafka broker's non-retriable error); they stay queued and are retried."),
		metric.WithUnit("{records}"))
	if err != nil {
		return nil, err
	}
	_, err = meter.Int64ObservableGauge("otelcol_audit_exporter_refused_waiting_log_records",
		metric.WithDescription("Log records in refused requests that wait for the backend to accept them again."),
		metric.WithUnit("{records}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(g.waiting.Load(), g.attrs)
			return nil
		}))
	return g, err
}

func (g *guard) push(ctx context.Context, ld plog.Logs) error {
	err := g.inner.ConsumeLogs(ctx, ld)
	if err == nil {
		if g.refusing.Swap(false) {
			g.logger.Info("backend accepts audit records again; refused records re-delivered",
				zap.Int64("records_that_waited", g.waiting.Load()))
		}
		g.mu.Lock()
		clear(g.pending)
		g.mu.Unlock()
		g.waiting.Store(0)
		return nil
	}
	reason, fields, refused := g.classify(err)
	if !refused {
		return err
	}
	n := ld.LogRecordCount()
	g.refused.Add(ctx, int64(n), g.attrs)
	g.mu.Lock()
	if _, seen := g.pending[ld]; !seen {
		g.pending[ld] = n
		g.waiting.Add(int64(n))
	}
	waiting := g.waiting.Load()
	g.mu.Unlock()
	g.refusing.Store(true)
	g.logger.Warn("backend refused audit records; they stay in the persistent queue and are retried until accepted",
		append(fields, zap.Int("records", n), zap.Int64("records_waiting", waiting), zap.Error(err))...)
	// The whole request is retried, also when the exporter says only part of it failed: the
	// same Logs comes back on every retry (counted once above); parts already taken arrive twice.
	return errors.New("backend refused the request (" + reason + "), retrying: " + err.Error())
}

// refusalStatus: a permanent error that carries an HTTP error status (4xx, or a 5xx the upstream
// exporter does not retry, e.g. otlp_http's 500) from the backend.
func refusalStatus(err error) (int, bool) {
	if !consumererror.IsPermanent(err) {
		return 0, false
	}
	m := statusPattern.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, false
	}
	s := m[1]
	if s == "" {
		s = m[2]
	}
	code, convErr := strconv.Atoi(s)
	if convErr != nil || code < 400 || code > 599 {
		return 0, false
	}
	return code, true
}
