"""Coexistence with contrib's tracing instrumentations (same trace ids, either order) and
containment: a hook that raises never changes the app's response; uninstrument removes hooks."""

from __future__ import annotations

import flask
import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_audit.errors import containment
from otel_audit.instrumentation import dbapi, sqlalchemy as sqlalchemy_adapter, starlette as asgi
from otel_audit.instrumentation.starlette import StarletteAuditInstrumentor
from otel_audit.instrumentation.dbapi import Sqlite3AuditInstrumentor
from otel_audit.instrumentation.flask import FlaskAuditInstrumentor
from otel_audit.instrumentation.sqlalchemy import SQLAlchemyAuditInstrumentor
from tests.instrumentation.apps import fresh_import
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.procs import REPO, Server, base_env, free_port, launcher


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _server_span(exporter):
    (server,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    return server


def _fastapi_app():
    import fastapi

    app = fastapi.FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return app


@pytest.mark.parametrize("audit_first", [True, False], ids=["audit-first", "tracing-first"])
def test_fastapi_records_carry_the_server_span_trace_id(all_requests_audit, instrument, spans, audit_first):
    # A plain successful GET: recorded under pack:all-requests (the quiet default leaves it out).
    audit = all_requests_audit
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    provider, exporter = spans
    tracing = FastAPIInstrumentor()
    if audit_first:
        instrument(StarletteAuditInstrumentor())
    tracing.instrument(tracer_provider=provider)
    try:
        if not audit_first:
            instrument(StarletteAuditInstrumentor())
        with TestClient(_fastapi_app()) as client:
            assert client.get("/items/5").json() == {"id": 5}
    finally:
        tracing.uninstrument()
    (event,) = [e for e in audit.events if e.origin == "asgi"]
    server = _server_span(exporter)
    assert event.http.route == "/items/{item_id}"
    assert event.record.trace_id == server.context.trace_id and event.record.trace_id != 0
    record = [r for r in audit.records() if r["attributes"].get("audit.origin") == "asgi"][0]
    assert record["trace_id"] == f"{server.context.trace_id:032x}"


@pytest.mark.parametrize("audit_first", [True, False], ids=["audit-first", "tracing-first"])
def test_flask_records_carry_the_server_span_trace_id(all_requests_audit, instrument, spans, audit_first):
    audit = all_requests_audit
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    provider, exporter = spans
    tracing = FlaskInstrumentor()
    if audit_first:
        instrument(FlaskAuditInstrumentor())
    tracing.instrument(tracer_provider=provider)
    try:
        if not audit_first:
            instrument(FlaskAuditInstrumentor())
        app = flask.Flask("coexist")
        app.add_url_rule("/items/<int:item_id>", "item", lambda item_id: {"id": item_id})
        assert app.test_client().get("/items/5").json == {"id": 5}
    finally:
        tracing.uninstrument()
    (event,) = [e for e in audit.events if e.origin == "flask"]
    assert event.record.trace_id == _server_span(exporter).context.trace_id != 0


def _responses(client) -> list[tuple[int, bytes]]:
    from examples.fastapi_app.traffic import run

    seen: list[tuple[int, bytes]] = []
    original = client.request

    def record(*args, **kwargs):
        response = original(*args, **kwargs)
        body = response.content if response.status_code != 200 or b"access_token" not in response.content else b"<token>"
        seen.append((response.status_code, body))
        return response

    client.request = record
    run(client)
    return seen


def test_failing_hooks_leave_the_fastapi_example_unchanged(audit, instrument, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bare.db'}")
    bare_module = fresh_import("examples.fastapi_app.app")
    with TestClient(bare_module.app, raise_server_exceptions=False) as client:
        bare = _responses(client)
    bare_module.engine.dispose()

    def broken(*args, **kwargs):
        raise RuntimeError("bug inside an audit hook")

    monkeypatch.setattr(asgi, "_http_info", broken)
    monkeypatch.setattr(sqlalchemy_adapter, "parse_statement", broken)
    monkeypatch.setattr(sqlalchemy_adapter, "_changes", broken)
    monkeypatch.setattr(dbapi.connection, "parse_statement", broken)
    before = containment.total()
    instrument(StarletteAuditInstrumentor(), SQLAlchemyAuditInstrumentor(), Sqlite3AuditInstrumentor())
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'broken.db'}")
    module = fresh_import("examples.fastapi_app.app")
    with TestClient(module.app, raise_server_exceptions=False) as client:
        audited = _responses(client)
    module.engine.dispose()
    assert audited == bare
    assert containment.total() > before
    assert {"asgi request start", "sqlalchemy statement", "sqlalchemy before_flush"} <= set(containment.counts)


def test_uninstrument_removes_the_asgi_middleware(audit):
    instrumentor = StarletteAuditInstrumentor()
    instrumentor.instrument(skip_dep_check=True)
    client = TestClient(_fastapi_app())
    client.get("/items/1")
    instrumentor.uninstrument()
    client.get("/items/2")
    assert [e.http.path for e in audit.events if e.origin == "asgi"] == ["/items/1"]
    assert not isinstance(client.app.middleware_stack.app, asgi.AuditMiddleware)


def test_disabled_instrumentations_switch_off_single_adapters(tmp_path):
    """Under the launcher, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS turns off the ASGI adapter only."""
    port = free_port()
    with OtlpReceiver() as receiver:
        env = base_env(OTEL_LOGS_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                       OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_AUDIT_QUIET="1",
                       OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="otel_audit_fastapi",
                       DATABASE_URL=f"sqlite:///{tmp_path / 'notes.db'}")
        server = Server([launcher(), "uvicorn", "examples.fastapi_app.app:app", "--port", str(port)], env,
                        f"http://127.0.0.1:{port}/health", cwd=REPO, log_path=tmp_path / "server.log").wait_ready()
        try:
            httpx.post(f"http://127.0.0.1:{port}/token", json={"username": "bob", "password": "bob-pw"})
        finally:
            server.stop()
        records = receiver.wait_for(lambda recs: any(r.event_name == "audit.audit_system.stop" for r in recs))
    origins = {r.attributes.get("audit.origin") for r in records}
    assert "sqlalchemy" in origins and "asgi" not in origins


@pytest.mark.parametrize("audit_first", [True, False], ids=["audit-first", "tracing-first"])
def test_orm_changes_keep_their_id_under_contrib_sqlite3_tracing(audit, spans, audit_first, tmp_path):
    """Contrib's sqlite3 instrumentation wraps the driver's connections in its own proxy (whichever
    loads first, as ``opentelemetry-instrument`` may): SQLAlchemy's connection is still recognised
    as ours, so its statements are not recorded a second time by the DB-API adapter and the ORM's
    entry (with the row's id) stays the request's change."""
    sqlite3_tracing = pytest.importorskip("opentelemetry.instrumentation.sqlite3")
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from tests.instrumentation.apps import from_sink, one
    from tests.instrumentation.test_sql import Base, Post

    provider, exporter = spans
    contained = containment.counts["sqlalchemy pool connect"]
    ours = [SQLAlchemyAuditInstrumentor(), Sqlite3AuditInstrumentor()]
    tracing = sqlite3_tracing.SQLite3Instrumentor()
    order = [*ours, tracing] if audit_first else [tracing, *ours]
    done = []
    try:
        for instrumentor in order:
            if instrumentor is tracing:
                tracing.instrument(tracer_provider=provider, skip_dep_check=True)
            else:
                instrumentor.instrument(skip_dep_check=True)
            done.append(instrumentor)
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'both.db'}")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add(Post(title="a", body="x"))
            session.commit()
        engine.dispose()
    finally:
        for instrumentor in reversed(done):  # outermost wrapper first, or the driver stays wrapped
            instrumentor.uninstrument()
    assert any(s.name.startswith("INSERT") for s in exporter.get_finished_spans())  # contrib traced it too
    created = one(from_sink(audit.records()), audit__action="create_resource")
    assert created.get("audit.target.id") == "1"
    assert created.get("audit.changes") == [{"action": "create_resource", "type": "post", "id": "1",
                                             "fields": ["title", "body"], "rows": 1}]
    assert containment.counts["sqlalchemy pool connect"] == contained
