"""Fixtures for the delivery tests: a clean environment, a spool and sink in tmp, a real runtime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from otel_audit import runtime
from otel_audit.delivery.sink import read_sink

CHAIN_KEY = "test-chain-key-0123456789abcdef"


class Delivery:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.sink = tmp_path / "audit.jsonl"
        self.spool = tmp_path / "spool"

    def start(self, **env: str) -> Any:
        runtime.reset_for_tests()
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)
        return runtime.start()

    def records(self) -> list[dict[str, Any]]:
        rt = runtime._runtime  # noqa: SLF001 - read only
        if rt is not None:
            rt.provider.force_flush()
        return list(read_sink(self.sink)) if self.sink.exists() else []


@pytest.fixture
def delivery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Delivery]:
    for name in list(os.environ):
        if name.startswith(("OTEL_AUDIT_", "OTEL_EXPORTER_OTLP", "OTEL_LOGS_EXPORTER")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_AUDIT_SINK_PATH", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("OTEL_AUDIT_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("OTEL_AUDIT_QUIET", "1")
    runtime.reset_for_tests()
    yield Delivery(tmp_path, monkeypatch)
    runtime.reset_for_tests()
