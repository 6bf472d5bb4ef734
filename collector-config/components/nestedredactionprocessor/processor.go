// Package nestedredactionprocessor masks secrets inside map- and array-valued log attributes
// (audit.changes, db.query.parameters, header dumps ...), which the contrib redaction processor
// does not search: it looks at top-level attribute values only.
//
// A value under a secret-looking map key is replaced by the mask (whatever its type); credential
// patterns inside nested strings are replaced match by match. Values matching allowed_values
// (placeholders that are already redacted) and records without a nested secret stay unchanged,
// so clean records keep their hash chain.
package nestedredactionprocessor // import "github.com/otel-audit/otelcol-audit/components/nestedredactionprocessor"

import (
	"context"
	"fmt"
	"regexp"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/metric"
)

const typeStr = "audit_nested_redaction"

// Config: the same pattern lists as the redaction processor (gateway.yaml shares them by anchor).
type Config struct {
	BlockedKeyPatterns []string `mapstructure:"blocked_key_patterns"`
	BlockedValues      []string `mapstructure:"blocked_values"`
	AllowedValues      []string `mapstructure:"allowed_values"`
	Mask               string   `mapstructure:"mask"`
}

// Validate names the pattern that does not compile.
func (c *Config) Validate() error {
	for name, list := range map[string][]string{"blocked_key_patterns": c.BlockedKeyPatterns, "blocked_values": c.BlockedValues, "allowed_values": c.AllowedValues} {
		for i, p := range list {
			if _, err := regexp.Compile(p); err != nil {
				return fmt.Errorf("%s[%d]: invalid regular expression: %w", name, i, err)
			}
		}
	}
	if c.Mask == "" {
		return fmt.Errorf("mask: must not be empty")
	}
	return nil
}

// NewFactory creates the audit_nested_redaction processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(component.MustNewType(typeStr),
		func() component.Config { return &Config{Mask: "****"} },
		processor.WithLogs(createLogs, component.StabilityLevelBeta))
}

type walker struct {
	keys, values, allowed []*regexp.Regexp
	mask                  string
	masked                metric.Int64Counter
}

func compile(list []string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, 0, len(list))
	for _, p := range list {
		out = append(out, regexp.MustCompile(p)) // Validate ran first
	}
	return out
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	c := cfg.(*Config)
	w := &walker{keys: compile(c.BlockedKeyPatterns), values: compile(c.BlockedValues), allowed: compile(c.AllowedValues), mask: c.Mask}
	var err error
	w.masked, err = set.MeterProvider.Meter("github.com/otel-audit/otelcol-audit/components/nestedredactionprocessor").Int64Counter(
		"otelcol_audit_nested_redaction_masked_values",
		metric.WithDescription("Values masked inside map or array attributes."), metric.WithUnit("{values}"))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, w.processLogs,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
}

func (w *walker) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	n := 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lrs.At(k).Attributes().Range(func(_ string, v pcommon.Value) bool {
					n += w.walk(v) // top-level strings are the redaction processor's job
					return true
				})
			}
		}
	}
	if n > 0 {
		w.masked.Add(ctx, int64(n))
	}
	return ld, nil
}

// walk masks inside a map or slice value; returns how many values it changed.
func (w *walker) walk(v pcommon.Value) int {
	n := 0
	switch v.Type() {
	case pcommon.ValueTypeMap:
		v.Map().Range(func(key string, child pcommon.Value) bool {
			if w.matchAny(w.keys, key) {
				if isEmpty(child) || (child.Type() == pcommon.ValueTypeStr && w.isAllowed(child.Str())) {
					return true // nothing to hide (otel-audit writes {} for a secret field), or already redacted
				}
				if !(child.Type() == pcommon.ValueTypeStr && child.Str() == w.mask) {
					child.SetStr(w.mask)
					n++
				}
				return true
			}
			n += w.walkChild(child)
			return true
		})
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			n += w.walkChild(s.At(i))
		}
	}
	return n
}

func isEmpty(v pcommon.Value) bool {
	switch v.Type() {
	case pcommon.ValueTypeEmpty:
		return true
	case pcommon.ValueTypeStr:
		return v.Str() == ""
	case pcommon.ValueTypeMap:
		return v.Map().Len() == 0
	case pcommon.ValueTypeSlice:
		return v.Slice().Len() == 0
	}
	return false
}

func (w *walker) walkChild(child pcommon.Value) int {
	if child.Type() == pcommon.ValueTypeStr {
		return w.maskString(child)
	}
	return w.walk(child)
}

func (w *walker) maskString(v pcommon.Value) int {
	s := v.Str()
	if w.isAllowed(s) {
		return 0
	}
	out := s
	for _, re := range w.values {
		out = re.ReplaceAllLiteralString(out, w.mask)
	}
	if out == s {
		return 0
	}
	v.SetStr(out)
	return 1
}

func (w *walker) isAllowed(s string) bool {
	for _, re := range w.allowed {
		if loc := re.FindStringIndex(s); loc != nil && loc[0] == 0 && loc[1] == len(s) {
			return true
		}
	}
	return false
}

func (w *walker) matchAny(list []*regexp.Regexp, s string) bool {
	for _, re := range list {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
