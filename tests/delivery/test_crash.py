"""kill -9 of an instrumented gunicorn server (master + 2 workers) mid-traffic: after a restart,
every request that got a response has its audit record delivered."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from otel_audit.delivery.status import spool_status
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.procs import Server, base_env, free_port, launcher


def _gunicorn(tmp_path: Path, receiver: OtlpReceiver, port: int, name: str) -> Server:
    env = base_env(
        OTEL_AUDIT_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=f"{receiver.endpoint}/v1/logs",
        OTEL_EXPORTER_OTLP_LOGS_PROTOCOL="http/protobuf",  # the distro defaults to grpc
        OTEL_EXPORTER_OTLP_LOGS_TIMEOUT="1",
        OTEL_AUDIT_SPOOL_DIR=str(tmp_path / "spool"),
        OTEL_AUDIT_QUIET="1",
        OTEL_SERVICE_NAME="crash-test",
        OTEL_AUDIT_POLICY="pack:all-requests",  # every GET of the traffic is a record to lose or keep
    )
    argv = [launcher(), "gunicorn", "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}", "tests.delivery.crash_app:app"]
    return Server(argv, env, f"http://127.0.0.1:{port}/health", log_path=tmp_path / f"{name}.log").wait_ready()


def _paths(receiver: OtlpReceiver) -> set[str]:
    return {r.attributes.get("url.path") for r in receiver.audit_records() if r.event_name == "audit.http.request"}


def test_kill_9_mid_traffic_loses_no_acknowledged_record(tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        receiver.fail_with = 503  # nothing leaves before the crash: every record must come from the spool
        port = free_port()
        server = _gunicorn(tmp_path, receiver, port, "first")
        acknowledged: set[str] = set()
        lock = threading.Lock()
        stop = threading.Event()

        def traffic(worker: int) -> None:
            number = worker
            session = requests.Session()
            while not stop.is_set():
                path = f"/item/{number}"
                try:
                    response = session.get(f"http://127.0.0.1:{port}{path}", timeout=5)
                except requests.RequestException:
                    number += 8
                    continue
                if response.status_code == 200 and response.json() == {"item": number}:
                    with lock:
                        acknowledged.add(path)
                number += 8

        with ThreadPoolExecutor(8) as pool:
            for worker in range(8):
                pool.submit(traffic, worker)
            deadline = time.monotonic() + 30
            while len(acknowledged) < 300 and time.monotonic() < deadline:
                time.sleep(0.05)
            server.stop(sig=signal.SIGKILL)  # the whole process group, mid-traffic
            time.sleep(0.3)
            stop.set()
        assert len(acknowledged) >= 300, server.output()
        assert not _paths(receiver)  # really nothing delivered before the crash
        pending = spool_status(tmp_path / "spool")
        assert pending["records_pending"] >= len(acknowledged)
        assert not any(p["alive"] for p in pending["processes"])

        receiver.fail_with = None
        restarted = _gunicorn(tmp_path, receiver, free_port(), "second")
        try:
            receiver.wait_for(lambda recs: acknowledged <= _paths(receiver), timeout=60)
        finally:
            restarted.stop()
        missing = acknowledged - _paths(receiver)
        assert not missing, sorted(missing)[:10]
        assert spool_status(tmp_path / "spool")["records_pending"] == 0
