"""The Flask example under the real ``opentelemetry-instrument`` launcher in a subprocess:
records reach an OTLP/HTTP receiver (decoded with opentelemetry-proto) or, with no exporter
configured, the embedded sink."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

from otel_audit.delivery.sink import read_sink
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.procs import REPO, Server, base_env, free_port, launcher

APP = REPO / "examples" / "flask_app" / "app.py"


def _drive(base: str) -> None:
    s = requests.Session()
    assert s.post(f"{base}/login", data={"username": "alice", "password": "wrong"}, allow_redirects=False).status_code == 200
    assert s.post(f"{base}/login", data={"username": "alice", "password": "correct horse"}, allow_redirects=False).status_code == 302
    note = s.post(f"{base}/notes", json={"title": "t"}).json()["id"]
    assert s.delete(f"{base}/notes/{note}").status_code == 204


def _start(tmp_path: Path, **env: str) -> Server:
    port = free_port()
    full_env = base_env(PORT=str(port), NOTES_DB=str(tmp_path / "notes.db"), OTEL_SERVICE_NAME="notes-test", **env)
    return Server([launcher(), sys.executable, str(APP)], full_env, f"http://127.0.0.1:{port}/login",
                  log_path=tmp_path / "server.log").wait_ready()


def test_records_reach_otlp_receiver_with_trace_ids(tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        server = _start(
            tmp_path,
            OTEL_LOGS_EXPORTER="otlp",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_BLRP_SCHEDULE_DELAY="100",
        )
        try:
            _drive(server.url.rsplit("/", 1)[0])
        finally:
            server.stop(sig=2)
        receiver.wait_for(lambda recs: any(r.event_name == "audit.audit_system.stop" for r in recs))
        records = receiver.audit_records()  # the app's own logs may arrive too, via the global provider
        spans_by_trace = {s["trace_id"]: s for s in receiver.spans if s["kind"] == 2}  # SERVER spans

    by_name: dict[str, list] = {}
    for record in records:
        by_name.setdefault(record.event_name, []).append(record)
    assert all(r.scope_name == "otel_audit" for r in records)
    assert all(r.resource.get("service.name") == "notes-test" for r in records)

    failed = by_name["audit.authentication.login_failed"][0]
    assert failed.attributes["audit.outcome"] == "failure"
    assert failed.attributes["http.route"] == "/login"
    assert failed.attributes["http.request.method"] == "POST"
    assert failed.severity_text == "WARN"

    login = by_name["audit.authentication.login"][0]
    assert login.attributes["audit.outcome"] == "success"
    assert login.attributes["http.response.status_code"] == 302
    assert login.attributes["enduser.id"] == "1"
    assert login.attributes["client.address"] == "127.0.0.1"
    assert login.attributes["user_agent.original"].startswith("python-requests")
    assert login.attributes["ocsf.class_uid"] == 3002 and login.attributes["ocsf.activity_id"] == 1

    delete = [r for r in records if r.attributes.get("http.request.method") == "DELETE"
              and r.attributes["audit.origin"] == "flask"][0]
    assert delete.attributes["audit.outcome"] == "success"
    assert delete.attributes["http.route"] == "/notes/<int:note_id>"
    assert delete.attributes["url.path"].startswith("/notes/")
    assert delete.attributes["user.name"] == "alice"

    event_ids = [r.attributes["audit.event_id"] for r in records]
    assert len(set(event_ids)) == len(event_ids)
    for record in (failed, login, delete):
        assert record.trace_id and record.trace_id in spans_by_trace, "audit record not in a server span's trace"
        assert record.span_id == spans_by_trace[record.trace_id]["span_id"]


def test_without_exporter_records_go_to_embedded_sink(tmp_path: Path) -> None:
    sink = tmp_path / "audit.jsonl"
    server = _start(tmp_path, OTEL_AUDIT_SINK_PATH=str(sink))
    try:
        _drive(server.url.rsplit("/", 1)[0])
    finally:
        server.stop(sig=2)
    records = list(read_sink(sink))
    names = [r["event_name"] for r in records]
    assert names[0] == "audit.audit_system.start"
    assert names[-1] == "audit.audit_system.stop"
    assert "audit.authentication.login_failed" in names and "audit.authentication.login" in names
    assert any(r["attributes"].get("http.request.method") == "DELETE" for r in records)
    assert (sink.stat().st_mode & 0o777) == 0o600
    log = server.output()
    assert log.count(f"records go to the embedded sink {sink}") == 1


def test_sigterm_still_writes_stop_record(tmp_path: Path) -> None:
    sink = tmp_path / "audit.jsonl"
    server = _start(tmp_path, OTEL_AUDIT_SINK_PATH=str(sink))
    requests.get(server.url)
    assert server.stop(sig=15) == -15  # still dies by SIGTERM, as without otel-audit
    names = [r["event_name"] for r in read_sink(sink)]
    assert names[-1] == "audit.audit_system.stop"


@pytest.mark.parametrize("disabled, expect_http", [("otel_audit_flask", False), ("", True)])
def test_disabled_instrumentations_switch_off_one_adapter(tmp_path: Path, disabled: str, expect_http: bool) -> None:
    sink = tmp_path / "audit.jsonl"
    server = _start(tmp_path, OTEL_AUDIT_SINK_PATH=str(sink), OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled,
                    OTEL_AUDIT_POLICY="pack:all-requests")  # every request recorded, a page view included
    try:
        requests.get(server.url)
    finally:
        server.stop(sig=2)
    records = list(read_sink(sink))
    assert any(r["event_name"] == "audit.audit_system.start" for r in records)  # core still on
    assert any("http.route" in r["attributes"] for r in records) is expect_http
