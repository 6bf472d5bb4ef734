"""Truncation is detectable (issue 17): a chain is CLOSED by its stop record, a running one leaves
signed checkpoints, and ``verify`` reports each chain as CLOSED, OPEN-SINCE or TRUNCATED. An emptied
file, a cut tail and a dropped newest chain no longer pass as "OK"; the checkpoint file (a second
destination) proves what a cut removed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import otel_audit
from otel_audit import runtime
from otel_audit.delivery.verify import verify_files
from tests.delivery.conftest import CHAIN_KEY

KEYS = {"k1": CHAIN_KEY.encode()}
REPO = Path(__file__).resolve().parents[2]


def _run(delivery, count: int, **env: str) -> None:
    delivery.start(OTEL_AUDIT_CHAIN_KEY=CHAIN_KEY, OTEL_AUDIT_CHAIN_KEY_ID="k1", **env)
    for i in range(count):
        otel_audit.record("data_modification", "update", attributes={"app.i": i})
    runtime.reset_for_tests()  # clean stop: the stop record closes the chain


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "OTEL_AUDIT_CHAIN_KEY": CHAIN_KEY,
           "OTEL_AUDIT_CHAIN_KEY_ID": "k1"}
    return subprocess.run([sys.executable, "-m", "otel_audit.cli", "verify", *args], capture_output=True, text=True,
                          env=env)


def _states(report) -> list[str]:
    return [state.state for state in report.states]


NO_CHECKPOINTS = {"OTEL_AUDIT_CHECKPOINT_INTERVAL": "0", "OTEL_AUDIT_CHECKPOINT_RECORDS": "0"}


@pytest.fixture
def with_checkpoints(delivery, tmp_path: Path) -> tuple[Path, Path]:
    digest = tmp_path / "checkpoints.jsonl"
    _run(delivery, 20, OTEL_AUDIT_CHECKPOINT_RECORDS="5", OTEL_AUDIT_CHECKPOINT_PATH=str(digest))
    return delivery.sink, digest


def test_a_clean_chain_is_closed_by_its_stop_record(with_checkpoints) -> None:
    sink, digest = with_checkpoints
    events = [json.loads(line)["event_name"] for line in _lines(sink)]
    assert events[-1] == "audit.audit_system.stop"
    assert events.count("audit.audit_system.checkpoint") >= 4  # every 5 records
    # The checkpoint file holds the chain's landmarks: start, checkpoints, stop.
    landmarks = [json.loads(line)["event_name"].rsplit(".", 1)[1] for line in _lines(digest)]
    assert landmarks[0] == "start" and landmarks[-1] == "stop" and landmarks.count("checkpoint") >= 4
    report = verify_files([str(sink)], KEYS, digest_paths=[str(digest)], expect_closed=True)
    assert report.ok and _states(report) == ["closed"], [str(p) for p in report.problems]
    result = _cli(str(sink), "--digest", str(digest), "--expect-closed")
    assert result.returncode == 0 and "CLOSED: chain" in result.stdout, result.stdout + result.stderr


def test_an_emptied_file_is_an_error_not_ok(with_checkpoints, tmp_path: Path) -> None:
    empty = _write(tmp_path / "empty.jsonl", [])
    result = _cli(str(empty))
    assert result.returncode == 2 and "no audit records" in result.stderr
    assert "OK" not in result.stdout


@pytest.mark.parametrize("checkpoints", [False, True], ids=["no-checkpoints", "checkpoints"])
def test_a_cut_tail_leaves_the_chain_open_and_fails_expect_closed(delivery, tmp_path: Path, checkpoints: bool) -> None:
    _run(delivery, 20, **({"OTEL_AUDIT_CHECKPOINT_RECORDS": "5"} if checkpoints else NO_CHECKPOINTS))
    lines = _lines(delivery.sink)
    cut = _write(tmp_path / "cut.jsonl", lines[:-5])  # the last 5 records, the stop record among them
    report = verify_files([str(cut)], KEYS)
    assert not report.problems and _states(report) == ["open"]
    [state] = report.states
    remaining = [json.loads(line) for line in lines[:-5]]
    checkpoints_left = [r for r in remaining if r["event_name"] == "audit.audit_system.checkpoint"]
    # OPEN-SINCE the last proof of how far it reached: the last checkpoint, else the chain's start.
    expected = checkpoints_left[-1] if checkpoints else remaining[0]
    assert state.since == expected["time_unix_nano"]
    assert verify_files([str(cut)], KEYS, expect_closed=True).problems[0].kind == "open"
    assert verify_files([str(cut)], KEYS, max_open_age_s=60, now_unix_nano=state.since + 61 * 10**9).problems
    assert not verify_files([str(cut)], KEYS, max_open_age_s=60, now_unix_nano=state.since + 59 * 10**9).problems
    default, strict = _cli(str(cut)), _cli(str(cut), "--expect-closed")
    assert default.returncode == 0 and "OPEN-SINCE" in default.stdout and "not proven" in default.stdout
    assert strict.returncode == 1 and "OPEN" in strict.stdout


def test_the_checkpoint_file_proves_a_cut_tail(with_checkpoints, tmp_path: Path) -> None:
    sink, digest = with_checkpoints
    cut = _write(tmp_path / "cut.jsonl", _lines(sink)[:-5])
    report = verify_files([str(cut)], KEYS, digest_paths=[str(digest)])
    assert _states(report) == ["truncated"]
    assert any(p.kind == "deleted" for p in report.problems)
    result = _cli(str(cut), "--digest", str(digest))
    assert result.returncode == 1 and "TRUNCATED" in result.stdout


@pytest.mark.parametrize("checkpoints", [False, True], ids=["no-checkpoints", "checkpoints"])
def test_a_dropped_newest_chain(delivery, tmp_path: Path, checkpoints: bool) -> None:
    digest = tmp_path / "checkpoints.jsonl"
    env = {"OTEL_AUDIT_CHECKPOINT_RECORDS": "5", "OTEL_AUDIT_CHECKPOINT_PATH": str(digest)} if checkpoints \
        else NO_CHECKPOINTS
    _run(delivery, 6, **env)
    first = _lines(delivery.sink)
    _run(delivery, 6, **env)
    dropped = _write(tmp_path / "dropped.jsonl", first)  # the second (newest) chain removed entirely
    report = verify_files([str(dropped)], KEYS)
    assert report.ok and _states(report) == ["closed"]  # the file alone cannot know there was a second chain
    newest = max(json.loads(line)["time_unix_nano"] for line in first)
    # ...but a trail of a running service must show an open chain: --max-open-age notices.
    stale = verify_files([str(dropped)], KEYS, max_open_age_s=60, now_unix_nano=newest + 61 * 10**9)
    assert [p.kind for p in stale.problems] == ["stale"]
    if checkpoints:  # the second destination names the dropped chain
        report = verify_files([str(dropped)], KEYS, digest_paths=[str(digest)])
        assert sorted(_states(report)) == ["closed", "truncated"]
        assert _cli(str(dropped), "--digest", str(digest)).returncode == 1


def test_an_idle_chain_checkpoints_at_its_interval(delivery) -> None:
    delivery.start(OTEL_AUDIT_CHECKPOINT_INTERVAL="0.2")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        checkpoints = [r for r in delivery.records() if r["event_name"] == "audit.audit_system.checkpoint"]
        if len(checkpoints) >= 2:
            break
        time.sleep(0.1)
    assert len(checkpoints) >= 2
    first = checkpoints[0]["attributes"]
    assert first["audit.checkpoint.interval_s"] == 0.2 and first["audit.chain.prev"]  # seq + predecessor MAC
    report = verify_files([str(delivery.sink)], {})
    [state] = report.states
    assert state.state == "open" and state.since == checkpoints[-1]["time_unix_nano"]


def test_bad_checkpoint_settings_name_the_variable(delivery) -> None:
    from otel_audit.config import AuditConfig
    from otel_audit.errors import ConfigError

    with pytest.raises(ConfigError, match="OTEL_AUDIT_CHECKPOINT_INTERVAL: '-1' is invalid"):
        AuditConfig.from_env({"OTEL_AUDIT_CHECKPOINT_INTERVAL": "-1"})
    with pytest.raises(ConfigError, match="OTEL_AUDIT_CHECKPOINT_RECORDS"):
        AuditConfig.from_env({"OTEL_AUDIT_CHECKPOINT_RECORDS": "many"})
