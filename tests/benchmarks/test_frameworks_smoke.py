"""The framework benchmark still runs and still counts what a user pays for: one otel-audit record
per CRUD request, a span per statement on the tracing side, django-auditlog's rows on the peer side.
Tiny counts, no timing asserted (the figures themselves belong to benchmarks/, not the suite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "frameworks.py"

pytest.importorskip("auditlog", reason="the benchmark extra (pip install -e .[bench]) is not installed")
pytest.importorskip("opentelemetry.instrumentation.sqlite3", reason="the benchmark extra is not installed")


def _run(framework: str, modes: str) -> subprocess.Popen[str]:
    argv = [sys.executable, str(BENCH), "--frameworks", framework, "--modes", modes, "--endpoints", "crud",
            "--requests", "3", "--repeat", "1", "--json"]
    return subprocess.Popen(argv, cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_crud_is_one_record_per_request_and_both_sides_watch_every_statement() -> None:
    runs = {framework: _run(framework, modes) for framework, modes in
            (("flask", "audit,tracing"), ("fastapi", "audit,tracing"), ("django", "audit,tracing,peer"))}
    figures = {}
    for framework, run in runs.items():
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err[-3000:]
        figures.update(json.loads(out))

    for framework in ("flask", "fastapi", "django"):
        assert figures[framework]["audit"]["crud_records"] == 1.0, (framework, figures[framework])
        # the request's span plus one per statement: insert, update, delete at least
        assert figures[framework]["tracing"]["crud_records"] >= 4, (framework, figures[framework])
    # django-auditlog on the same view: a row per create, update and delete
    assert figures["django"]["peer"]["crud_records"] == 3.0, figures["django"]
