"""``otel-audit policy validate|explain|test|schema`` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otel_audit.cli import main
from otel_audit.event import CATEGORIES

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "policies"

FAILED_LOGIN = {
    "category": "http", "action": "request",
    "http": {"method": "POST", "route": "/auth/login", "path": "/auth/login", "status_code": 200,
             "request_body": {"username": "alice", "password": "hunter2"},
             "response_headers": {"Content-Type": "text/html"}},
}


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_validate_ok_and_invalid(tmp_path, capsys) -> None:
    code, out = run(capsys, "policy", "validate", str(EXAMPLES / "seed-shorthand.yaml"))
    assert code == 0 and "OK  id=seed-shorthand" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - level: verbose\n  - match: {method: 'GET POST'}\n")
    code, out = run(capsys, "policy", "validate", str(bad))
    assert code == 1
    assert "INVALID (1 problem)" in out
    assert f"rules[0].level: 'verbose' is not one of none, metadata, request, full ({bad}:2:12)" in out


def test_every_example_policy_validates(capsys) -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".cases.yaml"))
    assert len(files) >= 3
    code, out = run(capsys, "policy", "validate", *files)
    assert code == 0, out


def test_explain_shows_classification_rule_level_and_redaction(capsys, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_AUDIT_HMAC_KEY", "explain-test-key-0123456789")  # stable pseudonyms, no notice
    code, out = run(capsys, "policy", "explain", str(EXAMPLES / "seed-shorthand.yaml"), "--event",
                    json.dumps(FAILED_LOGIN), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["event_name"] == "audit.authentication.login_failed"
    assert result["classified_by"] == "builtin.login"
    assert result["rule"] == "default" and result["level"] == "metadata"
    # the tried name leaves as its pseudonym by default, never in clear
    assert result["attributes"]["audit.attempted_username"].startswith("[HMAC:")
    assert "alice" not in json.dumps(result["attributes"])
    assert "audit.request.body" in result["left_out_by_level"]
    assert "hunter2" not in out
    assert any("audit_configs[0] skipped" in line for line in result["why"])


def test_explain_redacts_at_request_level(tmp_path, capsys) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("defaults: {level: request}\n")
    code, out = run(capsys, "policy", "explain", str(policy), "--event", json.dumps(FAILED_LOGIN))
    assert code == 0
    assert "audit.request.body" in out and "hunter2" not in out
    assert "[redacted]" in out


def test_explain_rejects_a_malformed_event(capsys) -> None:
    code, out = run(capsys, "policy", "explain", str(EXAMPLES / "seed-shorthand.yaml"), "--event",
                    '{"category": "http", "action": "request", "htp": {}}')
    assert code == 2 and "--event: unknown key 'htp'" in out


def test_golden_cases_pass_and_mismatches_show_a_diff(tmp_path, capsys) -> None:
    code, out = run(capsys, "policy", "test", str(EXAMPLES / "web-app.yaml"), str(EXAMPLES / "web-app.cases.yaml"))
    assert code == 0, out
    assert "cases passed" in out and "FAIL" not in out
    cases = tmp_path / "cases.yaml"
    cases.write_text("""
cases:
  - name: wrong expectation
    event: {category: data_modification, action: delete_resource, actor: {id: u1, roles: [admin]}}
    expect: {level: metadata, rule: nope}
""")
    code, out = run(capsys, "policy", "test", str(EXAMPLES / "web-app.yaml"), str(cases))
    assert code == 1
    assert "FAIL  wrong expectation" in out
    assert "-level: metadata" in out and "+level: full" in out
    assert "cases[0].expect.rule: expected 'nope', got 'admin-deletes'" in out
    assert "0/1 cases passed" in out


def test_schema_prints_the_published_json_schema(capsys) -> None:
    code, out = run(capsys, "policy", "schema")
    schema = json.loads(out)
    assert code == 0 and schema["title"] == "otel-audit policy"
    assert schema["$defs"]["match"]["properties"]["category"]["anyOf"][0]["enum"] == list(CATEGORIES)


def test_console_script_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "otel_audit.cli", "policy", "validate", "pack:default"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "id=otel-audit-default" in result.stdout


@pytest.mark.parametrize("path", sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".cases.yaml")),
                         ids=lambda p: p.name)
def test_examples_point_editors_at_the_schema(path: Path) -> None:
    assert path.read_text().startswith("# yaml-language-server: $schema=")


def test_validate_says_how_the_policy_redacts_texts(tmp_path, capsys, monkeypatch) -> None:
    """A policy's custom detectors keep the redaction scan in Python (slower): validate says so,
    naming them, so a policy author can tell why."""
    from otel_audit.config import NATIVE_SCAN_ENV
    from otel_audit.redaction.scan_plan import NativeScanner

    custom = tmp_path / "custom.yaml"
    custom.write_text(
        "redaction:\n  custom_detectors:\n    - {name: employee_id, pattern: 'EMP\\d{4}', action: mask}\n"
    )
    code, out = run(capsys, "policy", "validate", str(custom))
    assert code == 0, out
    if NativeScanner is None:
        assert "redaction scan: Python (the native scan loop is not built" in out
        return
    assert "redaction scan: Python (custom detectors: employee_id)" in out
    code, out = run(capsys, "policy", "validate", str(EXAMPLES / "seed-shorthand.yaml"))
    assert "redaction scan: native" in out
    monkeypatch.setenv(NATIVE_SCAN_ENV, "false")
    code, out = run(capsys, "policy", "validate", str(EXAMPLES / "seed-shorthand.yaml"))
    assert f"redaction scan: Python ({NATIVE_SCAN_ENV}=false)" in out
