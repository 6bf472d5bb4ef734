"""Coverage sees what the framework routes and the tables the app writes, and says who a rule
covers: each routing shape lists its exact route set, an unknown route object fails the run,
raw-SQL tables come from the database (SQLite file, PostgreSQL), and a rule that only applies to
admins leaves a critical route failing for everyone else."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.instrumentation.conftest import PG_DSN
from tests.support.procs import REPO, base_env

SHAPES = Path(__file__).parent / "shapes"


def coverage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otel_audit.cli", "coverage", "--app-dir", str(SHAPES), *args],
                          cwd=REPO, env=base_env(**env), capture_output=True, text=True, timeout=120)


def report(*args: str, **env: str) -> dict:
    result = coverage(*args, "--format", "json", **env)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_fastapi_included_routers_mounts_static_and_hosts_are_listed_exactly(tmp_path: Path) -> None:
    found = report("--app", "fastapi_shapes:app", SHAPES_STATIC=str(tmp_path))
    assert sorted((r["method"], r["route"], r["host"]) for r in found["routes"]) == [
        ("DELETE", "/api/v1/users/{user_id}", None),
        ("GET", "/api/v1/users/{user_id}", None),
        ("GET", "/docs", None),
        ("GET", "/docs/oauth2-redirect", None),
        ("GET", "/health", None),
        ("GET", "/legacy/reports/daily", None),
        ("GET", "/openapi.json", None),
        ("GET", "/redoc", None),
        ("GET", "/static/{path:path}", None),
        ("POST", "/api/v1/admin/roles", None),
        ("POST", "/ping", "api.example.test"),
        ("PUT", "/legacy/orders/{order_id}", None),
    ]
    assert found["notes"] == ["websocket /ws: not an HTTP request, the adapter does not audit it"]


def test_an_unknown_route_object_fails_coverage_naming_it() -> None:
    result = coverage("--app", "starlette_unknown:app")
    assert result.returncode == 2
    assert ("route object starlette_unknown.TenantRouter is not one coverage knows" in result.stderr)


def test_an_operation_the_openapi_schema_lists_but_discovery_missed_fails_coverage() -> None:
    result = coverage("--app", "schema_mismatch:app")
    assert result.returncode == 2
    assert ("FastAPI's OpenAPI schema lists 2 operations, 1 of which route discovery did not find: "
            "DELETE /items/{item_id}") in result.stderr


def test_flask_blueprints_prefixes_and_subdomains_are_listed_exactly() -> None:
    found = report("--app", "flask_shapes:app")
    assert sorted((r["method"], r["route"], r["host"]) for r in found["routes"]) == [
        ("DELETE", "/api/items/<int:item_id>", None),
        ("GET", "/", None),
        ("GET", "/api/items/<int:item_id>", None),
        ("GET", "/static/<path:filename>", None),
        ("POST", "/", None),
        ("POST", "/invoices", "billing"),
    ]


def test_django_include_with_namespaces() -> None:
    found = report("--app", "notesite.settings", "--app-dir", str(REPO / "examples" / "django_app"))
    routes = {(r["method"], r["route"]): r for r in found["routes"]}
    # admin.site.urls is an include() under the "admin" namespace: its requests are admin events
    change = routes[("POST", "/admin/auth/user/<path:object_id>/change/")]
    assert change["endpoint"] == "admin:auth_user_change" and change["event_name"] == "audit.admin.request"


def test_django_nested_includes_namespaces_and_re_path_are_listed_exactly() -> None:
    found = report("--app", "djshapes.settings")
    assert sorted({(r["route"], r["endpoint"], r["methods_inferred"]) for r in found["routes"]}) == [
        ("/", "home", True),
        ("/api/v1/billing/invoices/<int:pk>/", "billing-v1:invoices:detail", False),
        ("/api/v1/billing/reports/(?P<year>[0-9]{4})/$", "billing-v1:report", True),
    ]
    detail = {r["method"] for r in found["routes"] if r["endpoint"] == "billing-v1:invoices:detail"}
    assert detail == {"GET", "DELETE"}  # a class-based view's own methods


def test_raw_sql_tables_come_from_the_sqlite_file_the_app_is_configured_for(tmp_path: Path) -> None:
    database = tmp_path / "shop.db"
    with sqlite3.connect(database) as db:
        db.executescript("CREATE TABLE invoice (id INTEGER PRIMARY KEY); CREATE TABLE customer (id INTEGER);")
    policy = "rules:\n  - {id: invoices, match: {db_table: invoice}, level: full}\ncritical:\n  tables: [invoice, customer]\n"
    # the app's own config (Flask DATABASE), as the tutorial sets it
    found = report("--app", "flask_shapes:app", "--policy", policy, SHAPES_DATABASE=str(database))
    assert sorted({t["table"] for t in found["tables"]}) == ["customer", "invoice"]
    assert {(t["subject"], t["status"]) for t in found["tables"] if t["table"] == "invoice"} == {
        ("invoice INSERT", "covered"), ("invoice UPDATE", "covered"), ("invoice DELETE", "covered")}
    assert {t["subject"] for t in found["uncovered_critical"]} == {"customer INSERT", "customer UPDATE",
                                                                   "customer DELETE"}
    # or named on the command line; a file that is not there is an error, and none is created
    explicit = report("--app", "flask_shapes:app", "--database", f"sqlite:///{database}")
    assert sorted({t["table"] for t in explicit["tables"]}) == ["customer", "invoice"]
    missing = coverage("--app", "flask_shapes:app", "--database", str(tmp_path / "nope.db"))
    assert missing.returncode == 2 and "cannot read the SQLite file" in missing.stderr
    assert not (tmp_path / "nope.db").exists()


@pytest.fixture
def pg_schema():
    psycopg = pytest.importorskip("psycopg")
    try:
        db = psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at OTEL_AUDIT_TEST_PG_DSN ({type(exc).__name__})")
    schema = f"coverage_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE SCHEMA {schema}")
    db.execute(f"CREATE TABLE {schema}.payment (id serial PRIMARY KEY)")
    db.execute(f"CREATE TABLE {schema}.refund (id serial PRIMARY KEY)")
    db.execute(f"CREATE VIEW {schema}.payment_view AS SELECT id FROM {schema}.payment")
    try:
        yield schema
    finally:
        db.execute(f"DROP SCHEMA {schema} CASCADE")
        db.close()


def test_raw_sql_tables_come_from_postgresql(pg_schema: str) -> None:
    url = f"{PG_DSN}?options=-csearch_path%3D{pg_schema}"
    found = report("--app", "flask_shapes:app", "--database", url)
    assert sorted({t["table"] for t in found["tables"]}) == ["payment", "refund"]  # the view is not a table
    password = PG_DSN.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    wrong = coverage("--app", "flask_shapes:app", "--database", PG_DSN.replace(f":{password}@", ":s3cret-wrong@"))
    assert wrong.returncode == 2 and "cannot list its tables" in wrong.stderr
    assert "s3cret-wrong" not in wrong.stderr + wrong.stdout


def test_an_admin_only_rule_covers_admins_only_and_fails_a_critical_route() -> None:
    policy = ("rules:\n  - {id: admin-actions, match: {actor_role: '@admin'}, level: full}\n"
              "  - {id: deletes, match: {method: DELETE}, level: request}\n"
              "critical:\n  routes: ['POST /', 'DELETE /api/*']\n")
    found = report("--app", "flask_shapes:app", "--policy", policy)
    rows = {r["subject"]: r for r in found["routes"]}
    assert (rows["POST /"]["status"], rows["POST /"]["covered_for"]) == ("partial", ["admins"])
    assert rows["DELETE /api/items/<int:item_id>"]["status"] == "covered"  # deletes covers everyone else
    assert [r["subject"] for r in found["uncovered_critical"]] == ["POST /"]
    text = coverage("--app", "flask_shapes:app", "--policy", policy)
    assert text.returncode == 1
    assert "covered for admins only" in text.stdout
    assert ("POST / (critical: 'POST /'): rule admin-actions covers admins only; for users: no rule matches"
            in text.stdout)


def test_pci_dss_shows_its_admin_rule_as_admins_only(tmp_path: Path) -> None:
    found = report("--app", "flask_shapes:app", "--policy", "pack:pci-dss")
    static = next(r for r in found["routes"] if r["route"] == "/static/<path:filename>")
    assert static["rule"] == "pci-dss.admin-actions" and static["status"] == "partial"
    assert static["covered_for"] == ["admins"]
