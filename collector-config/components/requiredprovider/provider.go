// Package requiredprovider resolves ${required:NAME} from the environment and refuses to go on
// when NAME is unset, empty or blank: a collector (or `validate`) then fails at once, naming
// the variable, instead of starting with an empty endpoint or API key (the env provider only
// logs that at info level and carries on).
package requiredprovider // import "github.com/otel-audit/otelcol-audit/components/requiredprovider"

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

const schemeName = "required"

var namePattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

type provider struct{}

// NewFactory returns the factory of the `required` config provider.
func NewFactory() confmap.ProviderFactory {
	return confmap.NewProviderFactory(func(confmap.ProviderSettings) confmap.Provider { return &provider{} })
}

func (*provider) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	name, ok := strings.CutPrefix(uri, schemeName+":")
	if !ok {
		return nil, fmt.Errorf("%q uri is not supported by the %q provider", uri, schemeName)
	}
	if !namePattern.MatchString(name) {
		return nil, fmt.Errorf("${required:%s}: %q is not an environment variable name (letters, digits, _)", name, name)
	}
	val, exists := os.LookupEnv(name)
	if !exists {
		return nil, fmt.Errorf("environment variable %s is required by this configuration but is not set", name)
	}
	if strings.TrimSpace(val) == "" {
		return nil, fmt.Errorf("environment variable %s is required by this configuration but is empty", name)
	}
	// Same typing as ${env:NAME}: YAML scalars, anything else verbatim as a string.
	return confmap.NewRetrievedFromYAML([]byte(val))
}

func (*provider) Scheme() string { return schemeName }

func (*provider) Shutdown(context.Context) error { return nil }
