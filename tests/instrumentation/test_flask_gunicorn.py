"""The lead's Flask example served by gunicorn under the real launcher: the Flask adapter and the
sqlite3 DB-API adapter together, with contrib's Flask tracing active in the same process."""

from __future__ import annotations

from tests.instrumentation.apps import from_otlp, one, one_record_per_request, where
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.procs import REPO, Server, base_env, free_port, launcher


def test_flask_example_under_gunicorn_and_the_launcher(tmp_path):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with OtlpReceiver() as receiver:
        env = base_env(OTEL_LOGS_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                       OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_AUDIT_QUIET="1",
                       NOTES_DB=str(tmp_path / "notes.db"))
        # One worker: the example re-creates its demo database when the app module is imported.
        server = Server([launcher(), "gunicorn", "examples.flask_app.app:app", "-b", f"127.0.0.1:{port}", "-w", "1"],
                        env, f"{base_url}/login", cwd=REPO, log_path=tmp_path / "server.log").wait_ready()
        try:
            from examples.flask_app.traffic import run

            steps = dict(run(base_url))
        finally:
            server.stop()
        records = from_otlp(receiver.wait_for(lambda recs: any(r.event_name == "audit.audit_system.stop" for r in recs)))
    assert steps["alice: create note"] == 201 and steps["bob: server error"] == 500, server.output()
    records = [r for r in records if r.event_name.startswith("audit.")]

    requests_ = [r for r in records if r.get("audit.origin") == "flask"]
    assert {(r.get("http.request.method"), r.get("url.path").split("/")[1], r.get("http.response.status_code"))
            for r in requests_} >= {("POST", "login", 302), ("POST", "notes", 201), ("POST", "logout", 302)}
    (boom,) = where(requests_, url__path="/boom")
    assert boom.get("error.type") and boom.get("audit.outcome") == "failure"

    # One record per request: the statements the views ran (sqlite3 adapter) are inside it.
    # The quiet default leaves out the successful plain reads (the anonymous visit, reading the note);
    # the refused admin page, the export and the server error are recorded.
    one_record_per_request(records, len(steps), readiness=("GET", "/login"),
                           quiet={("GET", "/"): 1, ("GET", "/notes/1"): 1})
    insert = one(records, audit__action="create_resource", db__collection__name="notes")
    delete = one(records, audit__action="delete_resource", db__collection__name="notes")
    alice_id = insert.get("enduser.id")
    assert alice_id and delete.get("enduser.id") == alice_id
    assert insert.get("db.system.name") == "sqlite" and insert.get("http.route") == "/notes"
    assert [c["action"] for c in insert.get("audit.changes")] == ["create_resource"]
    assert delete.get("audit.target.type") == "notes" and delete.get("audit.target.id")
    # ...in the trace of the request (contrib's Flask tracing is on).
    assert len(insert.trace_id) == 32
