#!/usr/bin/env bash
# checkov (the Terraform static analyser of tests/collector/test_storage_as_code.py) in its own venv:
# it pins old packaging/boto3 that would clash with the app's test environment. Cached by version.
set -euo pipefail
version=3.3.30
venv="$HOME/.cache/otel-audit/checkov-venv"
if [ "$(cat "$venv/.version" 2>/dev/null)" = "$version" ] && "$venv/bin/checkov" --version >/dev/null 2>&1; then
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "checkov==$version"
"$venv/bin/checkov" --version >/dev/null
echo "$version" > "$venv/.version"
echo "checkov $version installed in $venv" >&2
