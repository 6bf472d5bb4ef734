"""Fixtures for the collector tests: find the built collector, run it, send OTLP records to it.

The binary comes from ``OTEL_AUDIT_COLLECTOR_BIN`` or from the cache path that
``.ci/build-collector.sh --print-path`` prints (that call never builds). Without a binary the
tests skip with the reason; CI builds the binary before running the tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "collector-config"
BUILD_SCRIPT = REPO / ".ci" / "build-collector.sh"

START_TIMEOUT = 60.0  # seconds for a collector to report healthy
STOP_TIMEOUT = 30.0  # seconds for a graceful SIGTERM shutdown before SIGKILL
SIGNAL_GRACE_S = 1.0  # after reporting healthy, before a SIGTERM can be a shutdown (see Collector.stop)
DELIVERY_TIMEOUT = 45.0  # seconds for records to reach a stand-in


# ----------------------------------------------------------------------------------------------
# Locating the binary


def _locate_collector() -> tuple[str | None, str]:
    """(path, reason-if-missing)."""
    env = os.environ.get("OTEL_AUDIT_COLLECTOR_BIN")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env, ""
        return None, f"OTEL_AUDIT_COLLECTOR_BIN={env} is not an executable file"
    try:
        out = subprocess.run(
            ["bash", str(BUILD_SCRIPT), "--print-path"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip().splitlines()
        cached = out[-1] if out else ""
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"cannot run {BUILD_SCRIPT} --print-path: {exc}"
    if cached and os.path.isfile(cached) and os.access(cached, os.X_OK):
        return cached, ""
    if shutil.which("go") is None:
        return None, (
            "no otel-audit collector binary (set OTEL_AUDIT_COLLECTOR_BIN) and no Go toolchain "
            "to build one with .ci/build-collector.sh"
        )
    return None, f"collector not built yet: run `bash .ci/build-collector.sh` (expected {cached})"


@pytest.fixture(scope="session")
def collector_bin() -> str:
    path, reason = _locate_collector()
    if path is None:
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def collector_components(collector_bin: str) -> dict[str, set[str]]:
    """Component types compiled into the binary, from ``<bin> components``."""
    import yaml

    out = subprocess.run([collector_bin, "components"], capture_output=True, text=True, timeout=60, check=True)
    data = yaml.safe_load(out.stdout) or {}
    found: dict[str, set[str]] = {}
    for kind in ("receivers", "processors", "exporters", "connectors", "extensions", "providers"):
        names = set()
        for entry in data.get(kind) or []:
            if isinstance(entry, dict):
                names.add(str(entry.get("name") or entry.get("scheme")))
            else:
                names.add(str(entry))
        found[kind] = names
    return found


# ----------------------------------------------------------------------------------------------
# Ports and processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last value: {last!r})")


class Collector:
    """One otelcol-audit process with its own ports, queue directory and log file."""

    def __init__(self, binary: str, configs: Iterable[str | Path], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.binary = binary
        self.configs = [str(CONFIG_DIR / c) if not os.path.isabs(str(c)) else str(c) for c in configs]
        self.workdir = workdir
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.queue_dir = workdir / "queue"
        self.env = {
            **os.environ,
            "OTEL_AUDIT_LISTEN_HOST": "127.0.0.1",
            "OTEL_AUDIT_OTLP_GRPC_PORT": str(self.grpc_port),
            "OTEL_AUDIT_OTLP_HTTP_PORT": str(self.http_port),
            "OTEL_AUDIT_HEALTH_PORT": str(self.health_port),
            "OTEL_AUDIT_METRICS_PORT": str(self.metrics_port),
            "OTEL_AUDIT_QUEUE_DIR": str(self.queue_dir),
            "OTEL_AUDIT_FILE_PATH": str(workdir / "audit.jsonl"),
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.ports_published = False

    def _new_ports(self) -> None:
        self.grpc_port, self.http_port = free_port(), free_port()
        self.health_port, self.metrics_port = free_port(), free_port()
        self.env.update({
            "OTEL_AUDIT_OTLP_GRPC_PORT": str(self.grpc_port), "OTEL_AUDIT_OTLP_HTTP_PORT": str(self.http_port),
            "OTEL_AUDIT_HEALTH_PORT": str(self.health_port), "OTEL_AUDIT_METRICS_PORT": str(self.metrics_port),
        })

    @property
    def otlp_http_endpoint(self) -> str:
        self.ports_published = True  # someone points at this port now: never move it
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"collector-{self.runs}.log"

    def args(self) -> list[str]:
        args = [self.binary]
        for config in self.configs:
            args += ["--config", config]
        return args

    def start(self) -> "Collector":
        self.runs += 1
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args(), env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if self.runs == 1 and not self.ports_published and "address already in use" in self.log_path.read_text(errors="replace"):
                    # free_port() only reserves a port until it returns: another process on this
                    # shared machine took one meanwhile. First start only (restarts keep ports).
                    self._new_ports()
                    self.runs = 0
                    return self.start()
                raise AssertionError(f"collector exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/", timeout=2) as resp:
                    if resp.status == 200:
                        self.ready_at = time.monotonic()
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"collector not healthy within {START_TIMEOUT:.0f}s:\n{self.log()}")

    def stop(self) -> int | None:
        """SIGTERM, wait for a graceful shutdown, SIGKILL as a last resort."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            # The Collector reports healthy while it starts its pipelines and only then asks for
            # SIGTERM (otelcol's Run: service started, then signal.Notify); a SIGTERM in between
            # kills it (-15) instead of shutting it down. On a loaded machine that gap is real.
            time.sleep(max(0.0, getattr(self, "ready_at", 0.0) + SIGNAL_GRACE_S - time.monotonic()))
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        code = self.proc.returncode
        self.proc = None
        return code

    def log(self) -> str:
        logs = []
        for run in range(1, self.runs + 1):
            path = self.workdir / f"collector-{run}.log"
            if path.exists():
                logs.append(f"--- run {run} ---\n" + path.read_text(errors="replace")[-8000:])
        return "\n".join(logs)


@pytest.fixture
def run_collector(collector_bin: str, tmp_path: Path) -> Iterator[Callable[..., Collector]]:
    """Factory: run_collector(configs, env) -> started Collector; all are stopped at teardown."""
    started: list[Collector] = []

    def factory(configs: Iterable[str | Path], env: dict[str, str] | None = None, start: bool = True) -> Collector:
        workdir = tmp_path / f"collector{len(started)}"
        workdir.mkdir()
        collector = Collector(collector_bin, configs, workdir, env)
        started.append(collector)
        return collector.start() if start else collector

    yield factory
    for collector in started:
        collector.stop()


# ----------------------------------------------------------------------------------------------
# Sending records with the OpenTelemetry SDK


class Sender:
    """Emits audit and app log records over OTLP/HTTP through a real SDK LoggerProvider."""

    def __init__(self, endpoint: str, service_name: str = "checkout", resource: dict[str, Any] | None = None) -> None:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
        from opentelemetry.sdk.resources import Resource

        attrs = {"service.name": service_name, "host.name": "app-host-1"} if resource is None else resource
        self.provider = LoggerProvider(resource=Resource.create(attrs))
        self.exporter = OTLPLogExporter(endpoint=f"{endpoint}/v1/logs", timeout=10)
        # Simple processor: each emit is one export call that has returned once emit() returns,
        # so the test knows exactly what the collector acknowledged.
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))
        self.audit_logger = self.provider.get_logger("otel_audit", "0.1.0")
        self.app_logger = self.provider.get_logger("myapp")

    def audit(self, outcome: str = "success", user: str | None = "alice", category: str = "authentication",
              action: str = "login", **extra: Any) -> str:
        from opentelemetry._logs import SeverityNumber

        event_id = str(uuid.uuid4())
        attributes = {
            "audit.event_id": event_id,
            "audit.category": category,
            "audit.action": action,
            "audit.outcome": outcome,
            "enduser.id": user,
            "client.address": "203.0.113.7",
            "http.request.method": "POST",
            "http.route": "/login",
            "http.response.status_code": 200 if outcome == "success" else 401,
        }
        attributes.update(extra)
        if user is None:  # e.g. a failed login of a name that does not exist
            del attributes["enduser.id"]
        self.audit_logger.emit(
            timestamp=time.time_ns(),
            severity_number=SeverityNumber.INFO if outcome == "success" else SeverityNumber.WARN,
            severity_text="INFO" if outcome == "success" else "WARN",
            body=f"user {user} {action} {outcome}",
            attributes=attributes,
            event_name=f"audit.{category}.{action}",
        )
        return event_id

    def app(self, message: str = "cache miss", **attributes: Any) -> str:
        from opentelemetry._logs import SeverityNumber

        marker = str(uuid.uuid4())
        self.app_logger.emit(
            timestamp=time.time_ns(),
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body=f"{message} {marker}",
            attributes={"app.marker": marker, **attributes},
        )
        return marker

    def close(self) -> None:
        self.provider.shutdown()


@pytest.fixture
def make_sender() -> Iterator[Callable[[str], Sender]]:
    senders: list[Sender] = []

    def factory(endpoint: str, service_name: str = "checkout", resource: dict[str, Any] | None = None) -> Sender:
        sender = Sender(endpoint, service_name, resource)
        senders.append(sender)
        return sender

    yield factory
    for sender in senders:
        sender.close()
