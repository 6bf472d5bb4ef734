"""The Flask example under ``opentelemetry-instrument``, exporting OTLP to the real collector.

app (otel_audit, hash chain keyed with OTEL_AUDIT_CHAIN_KEY) -> gateway + file.yaml + loki.yaml
-> Loki stand-in and the file journal. The audit records arrive at Loki, the app's other logs do
not, and ``otel-audit verify`` accepts the collector's file output: the gateway left every clean
record byte-identical.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from .conftest import DELIVERY_TIMEOUT, REPO, wait_until
from .standins import Loki
from .test_e2e import read_file_journal

APP = REPO / "examples" / "flask_app" / "app.py"
CHAIN_KEY = "collector-test-chain-key-0123456789"


def _drive(base: str) -> None:
    s = requests.Session()
    assert s.post(f"{base}/login", data={"username": "alice", "password": "wrong"}, allow_redirects=False).status_code == 200
    assert s.post(f"{base}/login", data={"username": "alice", "password": "correct horse"}, allow_redirects=False).status_code == 302
    note = s.post(f"{base}/notes", json={"title": "t", "body": "b"}).json()["id"]
    assert s.get(f"{base}/notes/{note}").status_code == 200
    assert s.delete(f"{base}/notes/{note}").status_code == 204
    assert s.post(f"{base}/logout", allow_redirects=False).status_code in (200, 302)


@pytest.mark.skipif(not APP.exists(), reason="examples/flask_app is not in the tree")
def test_flask_example_through_the_collector(run_collector, tmp_path: Path) -> None:
    procs = pytest.importorskip("tests.support.procs")
    pytest.importorskip("flask")

    with Loki() as loki:
        collector = run_collector(["gateway.yaml", "file.yaml", "loki.yaml"], env={"LOKI_ENDPOINT": loki.base_url})
        port = procs.free_port()
        env = procs.base_env(
            PORT=str(port),
            NOTES_DB=str(tmp_path / "notes.db"),
            OTEL_SERVICE_NAME="notes-via-collector",
            OTEL_LOGS_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.otlp_http_endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_BLRP_SCHEDULE_DELAY="100",
            OTEL_AUDIT_CHAIN_KEY=CHAIN_KEY,
            OTEL_AUDIT_CHAIN_KEY_ID="test",
            OTEL_AUDIT_SPOOL_DIR=str(tmp_path / "spool"),
            HOME=str(tmp_path),
        )
        server = procs.Server([procs.launcher(), sys.executable, str(APP)], env, f"http://127.0.0.1:{port}/login",
                              log_path=tmp_path / "app.log").wait_ready()
        try:
            _drive(f"http://127.0.0.1:{port}")
        finally:
            server.stop(sig=2)  # SIGINT: the app flushes its records on the way out

        def arrived():
            records = loki.snapshot()
            names = {r["event_name"] for r in records}
            return records if {"audit.authentication.login", "audit.authentication.login_failed"} <= names else None

        records = wait_until(arrived, DELIVERY_TIMEOUT, what="the Flask app's audit records at Loki")
        journal = collector.workdir / "audit.jsonl"
        wait_until(lambda: len(read_file_journal(journal)) >= len(records), DELIVERY_TIMEOUT, what="the file journal")
        collector.stop()  # flushes and closes the journal

    assert all(r["scope"] == "otel_audit" or "audit.category" in r["attributes"] for r in records), "app logs at Loki"
    assert all(r["resource"].get("service.name") == "notes-via-collector" for r in records)
    login = next(r for r in records if r["event_name"] == "audit.authentication.login")
    # loki.yaml moves outcome and category to the resource: Loki's index labels.
    assert login["resource"]["audit.outcome"] == "success" and "audit.outcome" not in login["attributes"]
    assert login["attributes"]["http.route"] == "/login"
    assert not any(k.startswith("redaction.") for r in records for k in r["attributes"])
    # Nobody's password crossed the collector.
    assert "correct horse" not in repr(records) and "'wrong'" not in repr(records)

    # The hash chain still verifies on what the collector wrote.
    verify = subprocess.run(
        [sys.executable, "-m", "otel_audit.cli", "verify", str(journal)],
        env={**procs.base_env(), "OTEL_AUDIT_CHAIN_KEY": CHAIN_KEY, "OTEL_AUDIT_CHAIN_KEY_ID": "test"},
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    lines = journal.read_text().splitlines()
    assert sum(line.count('"audit.chain.mac"') for line in lines) >= len(records), "records are not chained"

    # ... and it would notice a change: mask one value the way the redaction processor does.
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines).replace('"stringValue":"/login"', '"stringValue":"****"', 1) + "\n")
    assert tampered.read_text() != journal.read_text()
    check = subprocess.run(
        [sys.executable, "-m", "otel_audit.cli", "verify", str(tampered)],
        env={**procs.base_env(), "OTEL_AUDIT_CHAIN_KEY": CHAIN_KEY, "OTEL_AUDIT_CHAIN_KEY_ID": "test"},
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert check.returncode == 1, check.stdout + check.stderr
