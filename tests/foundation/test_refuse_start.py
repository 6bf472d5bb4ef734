"""Under the launcher, configuration errors and (fail-closed) broken policies stop start-up loudly."""

from __future__ import annotations

import subprocess
import sys

from tests.support.procs import base_env, launcher


def _run(tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [launcher(), sys.executable, "-c", "print('app body ran')"],
        env=base_env(OTEL_AUDIT_SINK_PATH=str(tmp_path / "a.jsonl"), **env),
        capture_output=True, text=True, timeout=60,
    )


def test_bad_variable_stops_start_up_naming_it(tmp_path) -> None:
    result = _run(tmp_path, OTEL_AUDIT_EXPORTER="kafka")
    assert result.returncode == 78
    assert "app body ran" not in result.stdout
    assert "OTEL_AUDIT_EXPORTER: 'kafka' is invalid: expected one of auto, otlp, sink, console" in result.stderr


def test_broken_policy_fail_closed_refuses(tmp_path) -> None:
    result = _run(tmp_path, OTEL_AUDIT_FAIL_MODE="closed", OTEL_AUDIT_POLICY="rules: [{level: verbose}]")
    assert result.returncode == 78
    assert "app body ran" not in result.stdout
    assert "refusing to start" in result.stderr and "verbose" in result.stderr


def test_broken_policy_fail_open_falls_back(tmp_path) -> None:
    result = _run(tmp_path, OTEL_AUDIT_POLICY="rules: [{level: verbose}]")
    assert result.returncode == 0
    assert "app body ran" in result.stdout
    assert "verbose" in result.stderr
