"""Audit-system tampering against the real examples: a policy that is rejected (the fallback in
force) and an audit policy changed between two starts on the same spool both fire
otel_audit_audit_tampering; an unchanged restart does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otel_audit.cli import main
from otel_audit.demo import read_trail, serve_example

pytest.importorskip("sigma")

APPS = ("flask", "django", "fastapi")


def _serve_once(app: str, sink: Path, workdir: Path, policy: str | None = None) -> list[dict]:
    with serve_example(app, sink, workdir, policy=policy):
        pass
    return read_trail(sink, timeout=20)


def _fires(capsys, trail: Path) -> list[str]:
    code = main(["detections", "test", "--trail", str(trail), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    return [a["rule"] for a in report["alerts"]]


@pytest.mark.parametrize("app", APPS)
def test_a_rejected_policy_fires_tampering(app: str, tmp_path: Path, capsys) -> None:
    broken = tmp_path / "policy.yaml"
    broken.write_text("format: 1\nrules:\n  - id: everything\n    level: loud\n")
    records = _serve_once(app, tmp_path / "audit.jsonl", tmp_path, policy=str(broken))
    assert any(r["event_name"] == "audit.audit_system.policy_invalid" for r in records)
    assert "otel_audit_audit_tampering" in _fires(capsys, tmp_path / "audit.jsonl")


def _lives(sink: Path) -> list[list[dict]]:
    """The sink's records per process (each process writes its own hash chain)."""
    lives: dict[str, list[dict]] = {}
    for record in read_trail(sink, timeout=5):
        lives.setdefault(record["attributes"].get("audit.chain.id", ""), []).append(record)
    return list(lives.values())


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("app", APPS)
def test_a_changed_policy_between_starts_fires_tampering_and_a_plain_restart_does_not(app: str, tmp_path: Path,
                                                                                   capsys) -> None:
    sink = tmp_path / "audit.jsonl"  # one destination: each start is compared with the previous one
    _serve_once(app, sink, tmp_path)
    _serve_once(app, sink, tmp_path)  # the example's own policy again
    _serve_once(app, sink, tmp_path, policy="pack:default")
    first, same, changed = _lives(sink)
    assert "otel_audit_audit_tampering" not in _fires(capsys, _write(tmp_path / "same.jsonl", same))
    assert any(r["event_name"] == "audit.configuration.policy_change" for r in changed)
    assert "otel_audit_audit_tampering" in _fires(capsys, _write(tmp_path / "changed.jsonl", changed))
