#!/usr/bin/env sh
# The audit checks of a CI pipeline, run on examples/flask_app from the repository root:
#   1. the policy is valid and its golden cases pass      (otel-audit policy validate / test)
#   2. every critical route and table is covered           (otel-audit coverage)
#   3. the app's own audit-trail tests pass                (pytest with the audit_trail fixture)
# Any failing step fails the pipeline (exit status non-zero).
set -eu

APP_DIR=examples/flask_app
POLICY="$APP_DIR/policy.yaml"
export NOTES_DB="${TMPDIR:-/tmp}/notes-ci.db"   # the example creates its SQLite file on import

echo "== policy: validate and golden cases"
otel-audit policy validate "$POLICY"
otel-audit policy test "$POLICY" examples/ci/flask_app.cases.yaml

echo "== coverage gate: critical routes and tables"
otel-audit coverage --app examples.flask_app.app:app --policy "$POLICY" --format json > "${TMPDIR:-/tmp}/audit-coverage.json"
otel-audit coverage --app examples.flask_app.app:app --policy "$POLICY"

echo "== audit-trail tests"
python -m pytest "$APP_DIR/tests" -q -p no:cacheprovider
