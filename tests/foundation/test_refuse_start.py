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


_SHOW_RESOLVER = "from otel_audit import runtime; print('resolver', runtime.get_runtime().config.actor_resolver)"


def _run_code(tmp_path, code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [launcher(), sys.executable, "-c", code],
        env=base_env(OTEL_AUDIT_SINK_PATH=str(tmp_path / "a.jsonl"), **env),
        capture_output=True, text=True, timeout=60,
    )


def test_unloadable_actor_resolver_fail_closed_refuses_naming_the_variable(tmp_path) -> None:
    result = _run(tmp_path, OTEL_AUDIT_FAIL_MODE="closed", OTEL_AUDIT_ACTOR_RESOLVER="nosuchmod:fn")
    assert result.returncode == 78, result.stderr
    assert "app body ran" not in result.stdout
    assert ("refusing to start: invalid configuration: OTEL_AUDIT_ACTOR_RESOLVER: 'nosuchmod:fn' is invalid: "
            "expected an importable 'package.module:function'; cannot import it (ModuleNotFoundError)") in result.stderr


def test_non_callable_actor_resolver_fail_closed_refuses(tmp_path) -> None:
    result = _run(tmp_path, OTEL_AUDIT_FAIL_MODE="closed", OTEL_AUDIT_ACTOR_RESOLVER="os:sep")
    assert result.returncode == 78
    assert "OTEL_AUDIT_ACTOR_RESOLVER: 'os:sep' is invalid" in result.stderr and "it is not callable" in result.stderr


def test_unloadable_actor_resolver_fail_open_says_so_once_and_continues_without_it(tmp_path) -> None:
    result = _run_code(tmp_path, _SHOW_RESOLVER, OTEL_AUDIT_ACTOR_RESOLVER="nosuchmod:fn")
    assert result.returncode == 0, result.stderr
    assert "resolver None" in result.stdout
    assert result.stderr.count("otel-audit: ERROR: OTEL_AUDIT_ACTOR_RESOLVER: 'nosuchmod:fn' is invalid") == 1
    assert "continuing without it (fail mode open)" in result.stderr


def test_loadable_actor_resolver_is_kept(tmp_path) -> None:
    result = _run_code(tmp_path, _SHOW_RESOLVER, OTEL_AUDIT_FAIL_MODE="closed", OTEL_AUDIT_ACTOR_RESOLVER="json:dumps")
    assert result.returncode == 0, result.stderr
    assert "resolver json:dumps" in result.stdout and "ACTOR_RESOLVER" not in result.stderr
