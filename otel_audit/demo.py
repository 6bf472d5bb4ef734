"""``otel-audit demo [--app flask|django|fastapi]``: an example app under the real launcher, its
scripted session over HTTP (the example's traffic.py), and the audit trail from the embedded sink
printed as a table. No collector, no account. Flask is served by its own ``app.run``, Django by
``manage.py runserver --noreload`` (after ``migrate``), FastAPI by uvicorn."""

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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from otel_audit.config import environment_without

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


@dataclass(frozen=True)
class ExampleApp:
    """How to serve one example under the launcher and drive its scripted session (traffic.py)."""

    name: str
    service: str
    ready_path: str
    policies: tuple[str, ...]  # relative to the example; the first that exists is used

    @property
    def directory(self) -> Path:
        return REPO / "examples" / f"{self.name}_app"

    def policy(self) -> Path | None:
        return next((self.directory / p for p in self.policies if (self.directory / p).exists()), None)

    def command(self, port: int) -> list[str]:
        if self.name == "django":
            return [sys.executable, str(self.directory / "manage.py"), "runserver", "--noreload", f"127.0.0.1:{port}"]
        if self.name == "fastapi":
            return [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
        return [sys.executable, str(self.directory / "app.py")]

    def app_env(self, workdir: Path, port: int) -> dict[str, str]:
        if self.name == "django":
            return {"NOTES_DB": str(workdir / "notes.sqlite3"), "DJANGO_SETTINGS_MODULE": "notesite.settings"}
        if self.name == "fastapi":
            return {"DATABASE_URL": f"sqlite:///{workdir / 'notes.db'}"}
        return {"NOTES_DB": str(workdir / "notes.db"), "PORT": str(port)}

    def prepare(self, env: dict[str, str], workdir: Path, log: Path) -> None:
        """Django needs its tables and demo users first (not audited: this is set-up)."""
        if self.name != "django":
            return
        plain = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
        with open(log, "ab") as log_file:
            done = subprocess.run([sys.executable, str(self.directory / "manage.py"), "migrate", "-v0"], env=plain,
                                  cwd=str(workdir), stdout=log_file, stderr=subprocess.STDOUT, timeout=120)
        if done.returncode != 0:
            raise SystemExit(f"otel-audit demo: manage.py migrate failed:\n{log.read_text(errors='replace')}")

    def drive(self, base_url: str) -> list[tuple[str, Any]]:
        """Run the example's traffic.py; (step, status or fact) pairs."""
        traffic = _load_module(self.directory / "traffic.py", f"otel_audit_demo_{self.name}_traffic")
        if self.name == "django":
            facts = traffic.run(lambda: traffic.HttpClient(base_url))
            return list(facts.items())
        if self.name == "fastapi":
            import httpx

            with httpx.Client(base_url=base_url, timeout=10) as client:
                return list(traffic.run(client).items())
        return [(name, status) for name, status in traffic.run(base_url)]


EXAMPLES = {
    "flask": ExampleApp("flask", "notes-demo", "/", ("policy.yaml",)),
    "django": ExampleApp("django", "notes-django-demo", "/health/", ("policy.yaml",)),
    "fastapi": ExampleApp("fastapi", "notes-fastapi-demo", "/health", ("policy.yaml", "tests/policy.yaml")),
}


def _load_module(path: Path, name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@contextmanager
def serve_example(name: str, sink: Path, workdir: Path, policy: str | None = None,
                  extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve an example under ``opentelemetry-instrument`` writing to the embedded ``sink``;
    yields its base URL; stops it with SIGINT (a clean exit, so the ``stop`` record is written).
    ``policy``: instead of the example's own policy (a file, inline YAML or ``pack:NAME``)."""
    example = EXAMPLES[name]
    port = _free_port()
    env = environment_without("OTEL_")
    env.update(
        {
            "OTEL_SERVICE_NAME": example.service,
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_AUDIT_SINK_PATH": str(sink),
            "OTEL_AUDIT_SPOOL_DIR": str(workdir / "spool"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), str(example.directory), env.get("PYTHONPATH")])),
            **example.app_env(workdir, port),
        }
    )
    chosen = policy or (str(example.policy()) if example.policy() else None)
    if chosen:
        env["OTEL_AUDIT_POLICY"] = chosen
    env.update(extra_env or {})
    log = workdir / "app.log"
    example.prepare(env, workdir, log)
    with open(log, "ab") as log_file:
        proc = subprocess.Popen([_launcher(), *example.command(port)], env=env, stdout=log_file,
                                stderr=subprocess.STDOUT, cwd=str(workdir))
        try:
            _wait_ready(proc, f"http://127.0.0.1:{port}{example.ready_path}", log)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def read_trail(sink: Path, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The sink's records, once the ``stop`` lifecycle record is there (or ``timeout`` passed)."""
    from otel_audit.delivery.sink import read_sink

    deadline = time.monotonic() + timeout
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        records = list(read_sink(sink)) if sink.exists() else []
        if any(r.get("event_name") == "audit.audit_system.stop" for r in records):
            break
        time.sleep(0.1)
    return records


def run_demo(sink: str | None = None, as_json: bool = False, app: str = "flask") -> int:
    if app not in EXAMPLES:
        print(f"otel-audit demo: unknown app {app!r}; expected one of {', '.join(EXAMPLES)}", file=sys.stderr)
        return 2
    example = EXAMPLES[app]
    if not (example.directory / "traffic.py").exists():
        print(f"otel-audit demo: the example app is not at {example.directory}; run the demo from a checkout of the repo", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="otel-audit-demo-"))
    sink_path = Path(sink).resolve() if sink else workdir / "audit.jsonl"  # the app runs in workdir
    with serve_example(app, sink_path, workdir) as base_url:
        port = base_url.rsplit(":", 1)[1]
        print(f"otel-audit demo: starting examples/{app}_app under opentelemetry-instrument on 127.0.0.1:{port}")
        print("otel-audit demo: driving the scripted session:")
        for name, status in example.drive(base_url):
            print(f"  {status}  {name}")
    records = read_trail(sink_path)
    print(f"\notel-audit demo: audit trail from the embedded sink {sink_path}:\n")
    print_records(records, as_json=as_json)
    if not records:
        log = workdir / "app.log"
        print(f"otel-audit demo: no records were written; app log:\n{log.read_text(errors='replace')}", file=sys.stderr)
        return 1
    return 0
