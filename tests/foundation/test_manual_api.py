"""The manual API records success, and failure with the exception type, and never swallows errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import otel_audit
from otel_audit import runtime
from otel_audit.errors import containment
from otel_audit.event import Target
from otel_audit.delivery.sink import read_sink


@pytest.fixture
def sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "audit.jsonl"
    for key in ("OTEL_LOGS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_AUDIT_POLICY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OTEL_AUDIT_SINK_PATH", str(path))
    monkeypatch.setenv("OTEL_AUDIT_QUIET", "1")
    monkeypatch.setenv("OTEL_AUDIT_SPOOL_DIR", str(tmp_path / "spool"))
    runtime.reset_for_tests()

    def records() -> list[dict]:
        runtime.flush()  # emit returns once the record is durable in the spool; the sink follows
        return [r for r in read_sink(path) if not r["event_name"].startswith("audit.audit_system")]

    yield records
    runtime.reset_for_tests()


def test_record_writes_one_event(sink) -> None:
    event = otel_audit.record("authorization", "grant_role", actor="admin-1", target=Target("user", "42", "alice"),
                              attributes={"app.role": "editor"})
    [record] = sink()
    assert record["event_name"] == "audit.authorization.grant_role"
    attrs = record["attributes"]
    assert attrs["audit.event_id"] == event.event_id
    assert attrs["enduser.id"] == "admin-1"
    assert attrs["audit.target.id"] == "42" and attrs["audit.target.type"] == "user"
    assert attrs["app.role"] == "editor"
    assert attrs["audit.outcome"] == "success"
    assert attrs["ocsf.class_uid"] == 3007 and attrs["ocsf.activity_id"] == 16  # User Management: Assign Roles
    assert record["severity_text"] == "INFO"


def test_context_manager_success_and_failure(sink) -> None:
    with otel_audit.audited("configuration", "config_change") as audit:
        audit.target = Target("setting", "mfa_required")
    with pytest.raises(KeyError):
        with otel_audit.audited("configuration", "config_change"):
            raise KeyError("missing")
    ok, failed = sink()
    assert ok["attributes"]["audit.outcome"] == "success"
    assert ok["attributes"]["audit.target.id"] == "mfa_required"
    assert failed["attributes"]["audit.outcome"] == "failure"
    assert failed["attributes"]["error.type"] == "KeyError"
    assert failed["severity_text"] == "ERROR"


class ExportError(Exception):
    pass


def test_decorator_sync_and_async(sink) -> None:
    @otel_audit.audited("data_access", "export", target_type="report")
    def export(fail: bool) -> str:
        if fail:
            raise ExportError("disk full")
        return "ok"

    @otel_audit.audited("data_access", "export")
    async def export_async() -> int:
        return 7

    assert export(False) == "ok"
    with pytest.raises(ExportError):
        export(True)
    assert asyncio.run(export_async()) == 7
    outcomes = [(r["attributes"]["audit.outcome"], r["attributes"].get("error.type")) for r in sink()]
    assert outcomes == [("success", None), ("failure", f"{__name__}.ExportError"), ("success", None)]


def test_bad_arguments_are_programming_errors(sink) -> None:
    with pytest.raises(ValueError, match="category 'auth' is not one of"):
        otel_audit.record("auth", "login")
    with pytest.raises(ValueError, match="outcome 'ok' is not one of"):
        otel_audit.record("authentication", "login", "ok")


def test_pipeline_failure_is_contained(sink, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = runtime.start()

    def broken(event):
        raise RuntimeError("boom in a step")

    monkeypatch.setattr(rt.pipeline, "steps", [broken])
    before = containment.counts["pipeline"]
    otel_audit.record("authentication", "login")  # must not raise
    assert containment.counts["pipeline"] == before + 1


def test_http_exceptions_keep_their_meaning(sink) -> None:
    from werkzeug.exceptions import Forbidden, Unauthorized

    for exc in (Forbidden(), Unauthorized()):
        with pytest.raises(type(exc)):
            with otel_audit.audited("data_access", "export"):
                raise exc
    denied, failed = sink()
    assert denied["attributes"]["audit.outcome"] == "denied"
    assert denied["attributes"]["audit.outcome.reason"] == "forbidden"
    assert failed["attributes"]["audit.outcome"] == "failure"
    assert failed["attributes"]["audit.outcome.reason"] == "unauthenticated"
