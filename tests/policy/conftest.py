"""Fixtures for the policy tests: a real runtime writing to a sink file, configured by a policy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from otel_audit import runtime
from otel_audit.delivery.sink import read_sink


class Audit:
    """Start the real runtime with a policy; read back what reached the sink."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.sink = tmp_path / "audit.jsonl"

    def start(self, policy: str | None = None, **env: str) -> Any:
        runtime.reset_for_tests()
        if policy is not None:
            self.monkeypatch.setenv("OTEL_AUDIT_POLICY", policy)
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)
        return runtime.start()

    def write_policy(self, text: str, name: str = "policy.yaml") -> str:
        path = self.tmp_path / name
        path.write_text(text)
        return str(path)

    def all_records(self) -> list[dict[str, Any]]:
        rt = runtime._runtime  # noqa: SLF001 - read only; get_runtime() would start a new one
        if rt is not None:
            rt.provider.force_flush()
        return list(read_sink(self.sink)) if self.sink.exists() else []

    def records(self, where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """Records other than audit_system lifecycle ones."""
        found = [r for r in self.all_records() if not r["event_name"].startswith("audit.audit_system.")]
        return [r for r in found if where is None or where(r)]

    def named(self, event_name: str) -> list[dict[str, Any]]:
        return [r for r in self.all_records() if r["event_name"] == event_name]


@pytest.fixture
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Audit]:
    for name in list(os.environ):
        if name.startswith(("OTEL_AUDIT_", "OTEL_EXPORTER_OTLP", "OTEL_LOGS_EXPORTER")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_AUDIT_SINK_PATH", str(tmp_path / "audit.jsonl"))
    # Its own spool directory: what an earlier test's process started with (its policy) is not
    # this test's previous deploy.
    monkeypatch.setenv("OTEL_AUDIT_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("OTEL_AUDIT_QUIET", "1")
    runtime.reset_for_tests()
    yield Audit(tmp_path, monkeypatch)
    runtime.reset_for_tests()
