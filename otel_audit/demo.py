"""``otel-audit demo``: the Flask example under the real launcher, a scripted session over HTTP, and
the audit trail from the embedded sink printed as a table. No collector, no account."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "flask_app"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launcher() -> str:
    candidate = Path(sys.executable).with_name("opentelemetry-instrument")
    found = str(candidate) if candidate.exists() else shutil.which("opentelemetry-instrument")
    if not found:
        raise SystemExit("otel-audit demo: opentelemetry-instrument not found; install with: pip install -e '.[demo]'")
    return found


def _wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 30.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"otel-audit demo: the example app exited early:\n{log.read_text(errors='replace')}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"otel-audit demo: the example app did not answer within {timeout}s")


def _short(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def print_records(records: Iterable[dict[str, Any]], as_json: bool = False, out: Any = None) -> None:
    """A readable table: time, event, outcome, actor, target/route, status."""
    out = out or sys.stdout
    records = list(records)
    if as_json:
        for record in records:
            print(json.dumps(record, sort_keys=True), file=out)
        return
    header = f"{'time':<12} {'event':<42} {'outcome':<8} {'actor':<10} {'what':<34} {'status':>6}  rule"
    print(header, file=out)
    print("-" * len(header), file=out)
    for record in records:
        attrs = record.get("attributes", {})
        stamp = time.strftime("%H:%M:%S", time.localtime(record["time_unix_nano"] / 1e9))
        stamp += f".{record['time_unix_nano'] // 1_000_000 % 1000:03d}"
        what = attrs.get("http.route") or attrs.get("url.path") or attrs.get("db.collection.name") or ""
        if attrs.get("http.request.method"):
            what = f"{attrs['http.request.method']} {what}"
        if attrs.get("audit.target.type") and not attrs.get("http.route"):
            what = f"{attrs['audit.target.type']} {attrs.get('audit.target.id') or ''}".strip()
        actor = attrs.get("user.name") or attrs.get("enduser.id") or "-"
        print(
            f"{stamp:<12} {_short(record.get('event_name'), 42):<42} {_short(attrs.get('audit.outcome'), 8):<8} "
            f"{_short(actor, 10):<10} {_short(what, 34):<34} {str(attrs.get('http.response.status_code', '')):>6}  "
            f"{attrs.get('audit.rule', '')}",
            file=out,
        )
    print(f"\n{len(records)} audit records", file=out)


def run_demo(sink: str | None = None, as_json: bool = False) -> int:
    if not (EXAMPLE / "app.py").exists():
        print(f"otel-audit demo: the example app is not at {EXAMPLE}; run the demo from a checkout of the repo", file=sys.stderr)
        return 2
    sys.path.insert(0, str(EXAMPLE))
    import traffic  # examples/flask_app/traffic.py

    workdir = Path(tempfile.mkdtemp(prefix="otel-audit-demo-"))
    sink_path = Path(sink) if sink else workdir / "audit.jsonl"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        {
            "OTEL_SERVICE_NAME": "notes-demo",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_AUDIT_SINK_PATH": str(sink_path),
            "OTEL_AUDIT_SPOOL_DIR": str(workdir / "spool"),
            "NOTES_DB": str(workdir / "notes.db"),
            "PORT": str(port),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        }
    )
    policy = EXAMPLE / "policy.yaml"
    if policy.exists():
        env["OTEL_AUDIT_POLICY"] = str(policy)
    log = workdir / "app.log"
    print(f"otel-audit demo: starting examples/flask_app under opentelemetry-instrument on 127.0.0.1:{port}")
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [_launcher(), sys.executable, str(EXAMPLE / "app.py")],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=str(workdir),
        )
        try:
            _wait_ready(proc, f"http://127.0.0.1:{port}/", log)
            print("otel-audit demo: driving the scripted session:")
            for name, status in traffic.run(f"http://127.0.0.1:{port}"):
                print(f"  {status}  {name}")
        finally:
            proc.send_signal(signal.SIGINT)  # a clean exit, so the 'stop' lifecycle record is written
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    from otel_audit.sink import read_sink

    deadline = time.monotonic() + 10
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        records = list(read_sink(sink_path)) if sink_path.exists() else []
        if any(r.get("event_name") == "audit.audit_system.stop" for r in records):
            break
        time.sleep(0.1)
    print(f"\notel-audit demo: audit trail from the embedded sink {sink_path}:\n")
    print_records(records, as_json=as_json)
    if not records:
        print(f"otel-audit demo: no records were written; app log:\n{log.read_text(errors='replace')}", file=sys.stderr)
        return 1
    return 0
