#!/usr/bin/env bash
# Start a local PostgreSQL for the adapter tests (idempotent; Debian 12 / PostgreSQL 15 as root).
# Creates role and database otel_audit (password otel_audit) listening on 127.0.0.1:5432, matching
# the tests' default OTEL_AUDIT_TEST_PG_DSN=postgresql://otel_audit:otel_audit@127.0.0.1:5432/otel_audit
set -euo pipefail

PG_ROLE=${PG_ROLE:-otel_audit}
PG_PASSWORD=${PG_PASSWORD:-otel_audit}
PG_DB=${PG_DB:-otel_audit}

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
  pg_createcluster "$version" main >/dev/null
fi
conf="/etc/postgresql/$version/main/postgresql.conf"
if ! grep -q "^listen_addresses = '127.0.0.1'" "$conf"; then
  echo "listen_addresses = '127.0.0.1'" >>"$conf"
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
  pg_ctlcluster "$version" main start
fi

for _ in $(seq 1 50); do
  su postgres -c "pg_isready -q -h 127.0.0.1 -p 5432" && break
  sleep 0.2
done

su postgres -c "psql -q -v ON_ERROR_STOP=1" <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${PG_ROLE}') THEN
    CREATE ROLE ${PG_ROLE} LOGIN PASSWORD '${PG_PASSWORD}';
  ELSE
    ALTER ROLE ${PG_ROLE} LOGIN PASSWORD '${PG_PASSWORD}';
  END IF;
END
\$\$;
SQL
if ! su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname = '${PG_DB}'\"" | grep -q 1; then
  su postgres -c "createdb -O ${PG_ROLE} ${PG_DB}"
fi
echo "postgres ready: postgresql://${PG_ROLE}:***@127.0.0.1:5432/${PG_DB}"
