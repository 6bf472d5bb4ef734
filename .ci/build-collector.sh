#!/usr/bin/env bash
# Build (or find in the cache) the otel-audit OpenTelemetry Collector
# distribution described by collector-config/builder-config.yaml.
#
# Usage:
#   bash .ci/build-collector.sh               build if needed; last stdout line = binary path
#   bash .ci/build-collector.sh --print-path  print where the binary is/would be; never builds
#   bash .ci/build-collector.sh --force       rebuild even if the cached binary exists
#
# Needs only Go and access to the Go module proxy. Everything goes under
#   ${OTEL_AUDIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-audit}/
#     collector/<sha256 of builder-config.yaml + components/>/otelcol-audit   the binary
#     collector/<sha256>/build.log                              last build's log
#     go/build, go/mod                                          Go build + module caches
#     go/bin/builder-<version>                                  the pinned ocb
# All progress goes to stderr; the last stdout line is the binary path.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONFIG=${OTEL_AUDIT_BUILDER_CONFIG:-$ROOT/collector-config/builder-config.yaml}
CACHE_ROOT=${OTEL_AUDIT_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/otel-audit}

mode=build
for arg in "$@"; do
  case "$arg" in
    --print-path) mode=print ;;
    --force) mode=force ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

[ -f "$CONFIG" ] || { echo "builder config not found: $CONFIG" >&2; exit 1; }
COMPONENTS=$(dirname "$CONFIG")/components
# The cache key covers the manifest and our own components' sources (go.mod, go.sum, *.go).
component_sums() {
  [ -d "$COMPONENTS" ] || return 0
  (cd "$COMPONENTS" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) ! -name '*_test.go' | LC_ALL=C sort | xargs -r sha256sum)
}
HASH=$( { sha256sum < "$CONFIG"; component_sums; } | sha256sum | cut -d' ' -f1)
OUT_DIR=$CACHE_ROOT/collector/$HASH
BIN=$OUT_DIR/otelcol-audit

if [ "$mode" = print ]; then
  echo "$BIN"
  exit 0
fi
if [ "$mode" = build ] && [ -x "$BIN" ]; then
  echo "cached collector: $BIN" >&2
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 || { echo "go is not installed: cannot build the collector" >&2; exit 1; }

# ocb is pinned to the same core release as the components: read it from the
# otlpreceiver line of the manifest so both can never drift apart.
OCB_VERSION=$(sed -n 's#^.*go\.opentelemetry\.io/collector/receiver/otlpreceiver \(v[0-9][0-9.]*\).*$#\1#p' "$CONFIG" | head -n1)
OCB_VERSION=${OCB_VERSION:-v0.158.0}

# Keep Go's caches with ours (a fresh machine gets everything from the module
# proxy; a warm cache makes rebuilds after a manifest edit quick). -modcacherw
# keeps the module cache deletable. GOMAXPROCS/-p follow the cores we have.
CORES=$(nproc 2>/dev/null || echo 2)
export GOCACHE=${OTEL_AUDIT_GOCACHE:-$CACHE_ROOT/go/build}
export GOMODCACHE=${OTEL_AUDIT_GOMODCACHE:-$CACHE_ROOT/go/mod}
export GOMAXPROCS=${GOMAXPROCS:-$CORES}
export GOFLAGS="${GOFLAGS:-} -modcacherw -buildvcs=false -p=$CORES"
export CGO_ENABLED=${CGO_ENABLED:-0}
mkdir -p "$OUT_DIR" "$GOCACHE" "$GOMODCACHE" "$CACHE_ROOT/go/bin"

# One build at a time per manifest (CI and a test run may race).
exec 9>"$OUT_DIR/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
  if [ "$mode" = build ] && [ -x "$BIN" ]; then
    echo "cached collector (built meanwhile): $BIN" >&2
    echo "$BIN"
    exit 0
  fi
fi

OCB=$CACHE_ROOT/go/bin/builder-$OCB_VERSION
if [ ! -x "$OCB" ]; then
  echo "installing ocb $OCB_VERSION" >&2
  GOBIN="$CACHE_ROOT/go/bin/.tmp-$$" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" >&2
  mv "$CACHE_ROOT/go/bin/.tmp-$$/builder" "$OCB"
  rmdir "$CACHE_ROOT/go/bin/.tmp-$$"
fi

WORK=$(mktemp -d "$OUT_DIR/work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp "$CONFIG" "$WORK/builder-config.yaml"
if [ -d "$COMPONENTS" ]; then cp -r "$COMPONENTS" "$WORK/components"; fi
echo "building otelcol-audit with ocb $OCB_VERSION into $OUT_DIR (log: $OUT_DIR/build.log)" >&2
start=$(date +%s)
# output_path in the manifest is relative: run ocb from the work dir.
if ! (cd "$WORK" && "$OCB" --config builder-config.yaml --verbose) >"$OUT_DIR/build.log" 2>&1; then
  tail -n 60 "$OUT_DIR/build.log" >&2
  echo "collector build failed (full log: $OUT_DIR/build.log)" >&2
  exit 1
fi
built=$(find "$WORK" -type f -name otelcol-audit -perm -u+x | head -n1)
[ -n "$built" ] || { echo "ocb finished but produced no otelcol-audit binary" >&2; exit 1; }
mv "$built" "$BIN.tmp.$$"
mv "$BIN.tmp.$$" "$BIN"
echo "built $BIN in $(( $(date +%s) - start ))s ($(du -h "$BIN" | cut -f1))" >&2
echo "$BIN"
