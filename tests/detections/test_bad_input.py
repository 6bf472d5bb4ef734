"""Bad input never ends in a traceback: a broken rule file or trail is exit 2 with a message
naming the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otel_audit.cli import main

pytest.importorskip("sigma")

BASE = """title: Failed login, ours
id: 9d0c2b1e-0000-4000-8000-0000000000aa
name: ours_login_failed
description: A failed login.
level: low
logsource: {product: otel-audit, service: audit}
detection:
  selection: {audit.action: login_failed}
  condition: selection
"""

BROKEN = {
    "yaml": ("title: x\ndetection: [unclosed\n", "not valid YAML"),
    "missing": ("title: x\nid: 9d0c2b1e-0000-4000-8000-0000000000ab\ndetection: {s: {audit.action: x}, condition: s}\n",
                "missing description, level"),
    "typo_field": (BASE.replace("audit.action", "audit.acton"), "field 'audit.acton' is no otel-audit record attribute"),
    "bad_condition": (BASE.replace("condition: selection", "condition: selection and missing_one"), "missing_one"),
    "bad_reference": (BASE + """---
title: Ours correlated
id: 9d0c2b1e-0000-4000-8000-0000000000ac
name: ours_burst
description: Burst.
level: high
correlation: {type: event_count, rules: [no_such_rule], group-by: [client.address], timespan: 5m, condition: {gte: 3}}
""", "no_such_rule"),
    "no_group": (BASE + """---
title: Ours ungrouped
id: 9d0c2b1e-0000-4000-8000-0000000000ad
name: ours_ungrouped
description: Burst.
level: high
correlation: {type: event_count, rules: [ours_login_failed], timespan: 5m, condition: {gte: 3}}
""", "needs group-by"),
    "not_a_rule": ("- just\n- a list\n", "expected a Sigma rule"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("command", ["list", "convert", "test"])
def test_a_broken_rule_file_is_named_with_its_problem(case: str, command: str, tmp_path: Path, capsys) -> None:
    text, problem = BROKEN[case]
    rule_file = tmp_path / f"{case}.yml"
    rule_file.write_text(text)
    trail = tmp_path / "trail.jsonl"
    trail.write_text("")
    extra = {"list": [], "convert": ["--backend", "splunk"], "test": ["--trail", str(trail)]}[command]
    assert main(["detections", command, *extra, "--rules", str(rule_file)]) == 2
    err = capsys.readouterr().err
    assert str(rule_file) in err and problem in err, err
    assert "Traceback" not in err


def test_a_missing_rules_path_is_named(tmp_path: Path, capsys) -> None:
    assert main(["detections", "list", "--rules", str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'}: no such rule file or directory" in capsys.readouterr().err


@pytest.mark.parametrize("content, problem", [
    ("not json\n", ":1: not JSON"),
    ("[1, 2]\n", ":1: expected a JSON object"),
    ('{"foo": 1}\n', ":1: neither an otel-audit sink record nor OTLP JSON"),
])
def test_a_trail_that_is_no_trail_is_named(content: str, problem: str, tmp_path: Path, capsys) -> None:
    trail = tmp_path / "trail.jsonl"
    trail.write_text(content)
    assert main(["detections", "test", "--trail", str(trail)]) == 2
    assert f"{trail}{problem}" in capsys.readouterr().err


def test_a_missing_trail_and_an_unknown_expected_rule_are_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["detections", "test", "--trail", str(tmp_path / "none.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    trail = tmp_path / "t.jsonl"
    trail.write_text("")
    assert main(["detections", "test", "--trail", str(trail), "--expect", "brute_forse"]) == 2
    assert "--expect names no rule: brute_forse" in capsys.readouterr().err


def test_an_otlp_json_trail_is_read_like_the_sink(tmp_path: Path, capsys) -> None:
    """The Collector's file exporter writes OTLP JSON: the same rule fires on it."""
    def record(n: int) -> dict:
        attrs = {"audit.action": "login_failed", "audit.outcome": "failure", "audit.attempted_username": "[HMAC:ab12]",
                 "client.address": "203.0.113.9", "audit.event_id": f"id-{n}"}
        return {"timeUnixNano": str(1_800_000_000_000_000_000 + n * 10**9), "eventName": "audit.authentication.login_failed",
                "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}
    request = {"resourceLogs": [{"resource": {"attributes": []},
                                 "scopeLogs": [{"scope": {"name": "otel_audit"}, "logRecords": [record(n) for n in range(5)]}]}]}
    trail = tmp_path / "otlp.json"
    trail.write_text(json.dumps(request) + "\n")
    assert main(["detections", "test", "--trail", str(trail), "--expect", "brute_force", "--json"]) == 0
    alerts = json.loads(capsys.readouterr().out)["alerts"]
    brute = next(a for a in alerts if a["rule"] == "otel_audit_brute_force")
    assert brute["group"] == {"audit.attempted_username": "[HMAC:ab12]"}
    assert brute["event_ids"] == [f"id-{n}" for n in range(5)]
    assert main(["detections", "test", "--trail", str(trail), "--expect-none"]) == 1
    assert "FAIL: expected no alert" in capsys.readouterr().err
