"""A gunicorn worker killed (SIGKILL) inside a view after its commit: the request's record was never
written, but the intent frame of its first change was; the next process exports it as an
interrupted action (issue #16 item 5)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import requests

from tests.instrumentation.apps import from_sink, one
from tests.support.procs import REPO, Server, base_env, free_port, launcher


def test_a_change_committed_by_a_killed_worker_is_exported_as_interrupted(tmp_path):
    database = tmp_path / "items.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO items (id, name) VALUES (7, 'seven')")
    sink = tmp_path / "audit.jsonl"
    env = base_env(OTEL_AUDIT_SINK_PATH=str(sink), OTEL_AUDIT_SPOOL_DIR=str(tmp_path / "spool"), OTEL_AUDIT_QUIET="1",
                   KILLED_WORKER_DB=str(database))
    port = free_port()
    server = Server([launcher(), "gunicorn", "examples.killed_worker.app:app", "-b", f"127.0.0.1:{port}", "-w", "1"],
                    env, f"http://127.0.0.1:{port}/health", cwd=REPO, log_path=tmp_path / "server.log").wait_ready()
    try:
        try:
            requests.delete(f"http://127.0.0.1:{port}/items/7", timeout=10)
        except requests.RequestException:
            pass  # the worker died: no response
    finally:
        server.stop()
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM items").fetchone() == (0,)  # the deletion did happen
    # The next process on this spool adopts the dead worker's spool.
    subprocess.run([sys.executable, "-m", "tests.delivery.intent_adopter"], cwd=REPO, env=env, check=True, timeout=120)
    records = from_sink(json.loads(line) for line in sink.read_text().splitlines() if line)
    interrupted = one(records, audit__outcome__reason="interrupted")
    assert interrupted.event_name == "audit.data_modification.delete_resource"
    assert interrupted.get("audit.outcome") == "unknown"
    assert interrupted.get("db.collection.name") == "items" and interrupted.get("url.path") == "/items/7"
    assert interrupted.get("http.request.method") == "DELETE" and interrupted.get("audit.interrupted.pid")
    assert not [r for r in records if r.get("url.path") == "/items/7" and r.get("audit.outcome") != "unknown"]
