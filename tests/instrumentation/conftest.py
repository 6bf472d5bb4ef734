"""Fixtures for the adapter tests: a real runtime writing to a sink file, plus a capture step at
the head of the real pipeline so tests can also see facts that only leave at higher levels."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from otel_audit import runtime
from otel_audit.event import AuditEvent

PG_DSN = os.environ.get("OTEL_AUDIT_TEST_PG_DSN", "postgresql://otel_audit:otel_audit@127.0.0.1:5432/otel_audit")


class Captured:
    """Events as adapters produced them (before the policy decides) and the sink's records."""

    def __init__(self, sink: Path) -> None:
        self.sink = sink
        self.events: list[AuditEvent] = []

    def __call__(self, event: AuditEvent) -> AuditEvent:
        self.events.append(event)
        return event

    def records(self) -> list[dict[str, Any]]:
        runtime.get_runtime().provider.force_flush()
        if not self.sink.exists():
            return []
        return [json.loads(line) for line in self.sink.read_text().splitlines() if line.strip()]

    def find(self, category: str | None = None, action: str | None = None, origin: str | None = None,
             **db: Any) -> list[AuditEvent]:
        found = []
        for event in self.events:
            if category and event.category != category or action and event.action != action:
                continue
            if origin and not event.origin.startswith(origin):
                continue
            if db and (event.db is None or any(getattr(event.db, key) != value for key, value in db.items())):
                continue
            found.append(event)
        return found

    def clear(self) -> None:
        self.events.clear()


def _started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str | None = None) -> Iterator[Captured]:
    for name in list(os.environ):
        if name.startswith(("OTEL_AUDIT_", "OTEL_EXPORTER_OTLP", "OTEL_LOGS_EXPORTER")):
            monkeypatch.delenv(name)
    sink = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OTEL_AUDIT_SINK_PATH", str(sink))
    monkeypatch.setenv("OTEL_AUDIT_QUIET", "1")
    if policy is not None:
        monkeypatch.setenv("OTEL_AUDIT_POLICY", policy)
    runtime.reset_for_tests()
    started = runtime.start()
    captured = Captured(sink)
    started.pipeline.steps.insert(0, captured)
    yield captured
    runtime.reset_for_tests()


@pytest.fixture
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    """The default policy: one record per action (request or transaction)."""
    yield from _started(tmp_path, monkeypatch)


@pytest.fixture
def all_requests_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    """``pack:all-requests``: the default policy without its quiet rules, so successful plain
    GETs are recorded too (for tests whose subject is not the default's quietness)."""
    yield from _started(tmp_path, monkeypatch, "pack:all-requests")


#: Every statement and ORM change its own record, reads included (pgAudit-style).
STATEMENT_POLICY = "{format: 1, id: per-statement, extends: [], defaults: {level: full, granularity: statement}}"


@pytest.fixture
def statement_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    """``granularity: statement``: the adapters' facts as records of their own."""
    yield from _started(tmp_path, monkeypatch, STATEMENT_POLICY)


def pg_available() -> str | None:
    """None when the test PostgreSQL answers, else the reason to skip."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        psycopg.connect(PG_DSN, connect_timeout=2).close()
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL not reachable at OTEL_AUDIT_TEST_PG_DSN ({type(exc).__name__}); run .ci/start-postgres.sh"
    return None


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    reason = pg_available()
    if reason:
        pytest.skip(reason)
    return PG_DSN


@pytest.fixture
def instrument():
    """instrument(SomeInstrumentor(), ...) for the test; uninstrumented afterwards, in reverse."""
    active: list[Any] = []

    def _instrument(*instrumentors: Any) -> None:
        for instrumentor in instrumentors:
            instrumentor.instrument(skip_dep_check=True)
            active.append(instrumentor)

    yield _instrument
    for instrumentor in reversed(active):
        instrumentor.uninstrument()
