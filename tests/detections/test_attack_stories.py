"""For every shipped rule: an attack story against each example app (Flask, Django, FastAPI,
served under the launcher) makes it fire through ``otel-audit detections test`` on the real
trail; the benign story fires nothing. Each story's trail is its own file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otel_audit.cli import main

from .stories import APPS, stories

pytest.importorskip("sigma")

CASES = [(app, story, rule) for app in APPS for story, (rule, _) in stories(APPS[app]).items()]


class Trails(dict):
    """app -> {story: trail}, each app served and played when a test first asks for it."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.factory = factory

    def __missing__(self, app: str) -> dict[str, Path]:
        from .stories import play_all

        self[app] = play_all(app, self.factory.mktemp(f"stories-{app}"))
        return self[app]


@pytest.fixture(scope="module")
def trails(tmp_path_factory: pytest.TempPathFactory) -> Trails:
    return Trails(tmp_path_factory)


def detections_test(capsys, trail: Path, *args: str) -> tuple[int, dict]:
    code = main(["detections", "test", "--trail", str(trail), "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.mark.parametrize("app, story, rule", CASES, ids=[f"{a}-{s}" for a, s, _ in CASES])
def test_story_fires_its_rule_and_the_benign_one_nothing(trails, capsys, app: str, story: str, rule: str | None) -> None:
    trail = trails[app][story]
    assert trail.read_text().strip(), f"{app} {story}: no records in the story's window"
    if rule is None:
        code, report = detections_test(capsys, trail, "--expect-none")
        assert code == 0 and report["alerts"] == [], report["alerts"]
        return
    code, report = detections_test(capsys, trail, "--expect", rule)
    fired = [a for a in report["alerts"] if a["rule"] == rule]
    assert code == 0 and fired, f"{rule} did not fire on {app} {story}: {[a['rule'] for a in report['alerts']]}"
    if rule == "otel_audit_login_after_failures":  # the burst it builds on is an alert of its own
        assert any(a["rule"] == "otel_audit_login_failure_burst" for a in report["alerts"])
    recorded = {json.loads(line)["attributes"].get("audit.event_id") for line in trail.read_text().splitlines()}
    assert set(fired[0]["event_ids"]) <= recorded and fired[0]["event_ids"]  # the alert names real records
