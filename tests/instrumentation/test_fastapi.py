"""The FastAPI example audited twice: in-process through the test client, and served by uvicorn
under the real ``opentelemetry-instrument`` launcher with records collected over OTLP/HTTP."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from otel_audit.instrumentation.starlette import StarletteAuditInstrumentor
from otel_audit.instrumentation.dbapi import Sqlite3AuditInstrumentor
from otel_audit.instrumentation.sqlalchemy import SQLAlchemyAuditInstrumentor
from tests.instrumentation.apps import one_record_per_request, from_otlp, from_sink, fresh_import, one, where
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.procs import REPO, Server, base_env, free_port, launcher

ALICE, BOB = "1", "2"


def check_trail(records, facts) -> None:
    """What an auditor asks of the scripted session (examples/fastapi_app/traffic.py)."""
    note = str(facts["note_id"])
    logins = [r for r in where(records, http__route="/token") if r.get("db.operation.name") is None]
    assert sorted(r.get("audit.outcome") for r in logins) == ["failure", "success", "success"]
    assert all(r.event_name.startswith("audit.authentication.") for r in logins)

    created = one(records, audit__category="data_modification", audit__action="create_resource",
                  audit__target__type="note")
    assert created.get("enduser.id") == ALICE and created.get("http.route") == "/notes"
    assert created.get("audit.target.id") == note, created.get("audit.changes")
    updated = one(records, audit__action="update_resource", audit__target__type="note")
    assert updated.get("audit.changes.fields") == ["body"] and updated.get("enduser.id") == ALICE
    deleted = one(records, audit__action="delete_resource", audit__target__type="note")
    assert deleted.get("enduser.id") == ALICE and deleted.get("http.request.method") == "DELETE"
    # The row the request removed is inside its one record (the SQL and the ORM saw it: one entry).
    assert deleted.get("audit.changes") == [{"action": "delete_resource", "type": "note", "id": note, "rows": 1}]
    assert deleted.get("http.route") == "/notes/{note_id}" and deleted.get("ocsf.activity_id") == 4
    assert created.get("ocsf.class_uid") == 6003 and created.get("ocsf.activity_id") == 1
    one_record_per_request(records, facts["requests"], facts.get("readiness"))

    denied = where(records, audit__outcome="denied")
    assert {(r.get("enduser.id"), r.get("http.route")) for r in denied} == {
        (BOB, "/notes/{note_id}"), (BOB, "/admin/users/{user_id}/roles")}
    # A change of the user table's role field is a role grant, whichever layer saw it (issue #18).
    grant = one(records, audit__action="grant_role", audit__target__type="app_user")
    assert grant.get("audit.target.id") == BOB and grant.get("enduser.id") == ALICE
    assert grant.get("audit.changes.fields") == ["roles"] and grant.get("audit.role.names") == ["editor"]
    assert grant.get("audit.category") == "authorization" and grant.get("ocsf.activity_id") == 16

    (crash,) = where(records, http__route="/reports/crash", audit__origin="asgi")
    assert crash.get("audit.outcome") == "failure" and crash.get("error.type") == "RuntimeError"
    assert crash.get("http.response.status_code") == 500 and crash.get("enduser.id") == ALICE
    (logout,) = where(records, http__route="/logout", audit__origin="asgi")
    assert logout.get("enduser.id") == BOB and logout.get("audit.outcome") == "success"


@pytest.fixture
def fastapi_example(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'notes.db'}")
    module = fresh_import("examples.fastapi_app.app")
    yield module
    module.engine.dispose()


def test_fastapi_example_in_process(audit, instrument, fastapi_example):
    instrument(StarletteAuditInstrumentor(), SQLAlchemyAuditInstrumentor(), Sqlite3AuditInstrumentor())
    from examples.fastapi_app.traffic import run

    with TestClient(fastapi_example.app, raise_server_exceptions=False) as client:
        facts = run(client)
    assert facts["crash"] == 500 and facts["forbidden_delete"] == 403 and facts["after_logout"] == 401
    check_trail(from_sink(audit.records()), facts)
    # The request body is teed, not consumed: the app got it (note created) and so did the event.
    (request,) = [e for e in audit.events if e.origin == "asgi" and e.http.method == "POST" and e.http.route == "/notes"]
    assert request.http.request_body == {"title": "quarterly plan", "body": "draft"}
    # Inside the view the app's own verified user (request.state.user) beats the unverified JWT claim.
    (created,) = [e for e in audit.find("data_modification", "create_resource") if e.target.type == "note"]
    assert created.actor.source == "app_user" and created.actor.name == "alice" and created.actor.roles == ("admin",)


def test_fastapi_example_under_uvicorn_and_the_launcher(tmp_path):
    port = free_port()
    with OtlpReceiver() as receiver:
        env = base_env(
            OTEL_LOGS_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_AUDIT_QUIET="1",
            DATABASE_URL=f"sqlite:///{tmp_path / 'notes.db'}",
        )
        server = Server(
            [launcher(), "uvicorn", "examples.fastapi_app.app:app", "--host", "127.0.0.1", "--port", str(port)],
            env, f"http://127.0.0.1:{port}/health", cwd=REPO, log_path=tmp_path / "server.log",
        ).wait_ready()
        try:
            from examples.fastapi_app.traffic import run

            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                facts = run(client)
        finally:
            server.stop()
        records = from_otlp(receiver.wait_for(lambda recs: any(r.event_name == "audit.audit_system.stop" for r in recs)))
    assert facts["crash"] == 500
    audit_records = [r for r in records if r.event_name.startswith("audit.")]
    check_trail(audit_records, {**facts, "readiness": ("GET", "/health")})
    # contrib's FastAPI tracing is active under the launcher too: the request record and the row
    # change it caused carry the request span's trace id.
    (create_request,) = where(audit_records, http__route="/notes", http__request__method="POST", audit__origin="asgi")
    created = one(audit_records, audit__action="create_resource", audit__target__type="note")
    assert len(create_request.trace_id) == 32 and created.trace_id == create_request.trace_id
