"""``otel-audit coverage`` on the example apps: the full report, the gate failing when a rule is
removed (naming what is uncovered), level ``none`` on a critical route, JSON output, Django."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import REPO, base_env

FLASK_POLICY = REPO / "examples" / "flask_app" / "policy.yaml"
FASTAPI_POLICY = REPO / "examples" / "fastapi_app" / "tests" / "policy.yaml"


def coverage(tmp_path: Path, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = base_env(NOTES_DB=str(tmp_path / "notes.db"), DATABASE_URL=f"sqlite:///{tmp_path / 'fastapi.db'}")
    return subprocess.run([sys.executable, "-m", "otel_audit.cli", "coverage", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def without(policy: Path, rule_id: str, tmp_path: Path) -> Path:
    """A copy of ``policy`` with one rule (its ``- id:`` block) removed."""
    lines = policy.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"- id: {rule_id}"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("- id:") or not lines[i].startswith(" "))
    copy = tmp_path / f"without-{rule_id}.yaml"
    copy.write_text("".join(lines[:start] + lines[end:]))
    return copy


def rows_by_subject(report: dict) -> dict[str, dict]:
    return {row["subject"]: row for row in report["routes"] + report["tables"]}


def test_flask_example_full_report(tmp_path: Path) -> None:
    result = coverage(tmp_path, "--app", "examples.flask_app.app:app", "--policy", str(FLASK_POLICY),
                      "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["framework"] == "flask" and report["policy"]["id"] == "notes-flask"
    rows = rows_by_subject(report)
    expected = {  # subject: (event, rule, level, critical pattern)
        "POST /admin/users/<username>/role": ("audit.authorization.grant_role", "role-changes", "full", "/admin/*"),
        "DELETE /admin/users/<username>": ("audit.admin.delete_user", "admin-actions", "full", "/admin/*"),
        "GET /admin/users": ("audit.http.request", "admin-area", "request", "/admin/*"),
        "GET /admin/export": ("audit.http.request", "admin-area", "request", "/admin/*"),
        "DELETE /notes/<int:note_id>": ("audit.http.request", "deletes", "request", "DELETE *"),
        "POST /login": ("audit.authentication.login", "default", "metadata", None),
        "GET /notes": ("audit.http.request", "builtin.quiet-reads", "none", None),  # a plain read: left out by default
        "users DELETE": ("audit.data_modification.delete_resource", "user-table-changes", "request", "users"),
        "users UPDATE": ("audit.data_modification.update_resource", "user-table-changes", "request", "users"),
    }
    for subject, (event, rule, level, critical) in expected.items():
        row = rows[subject]
        assert (row["event_name"], row["rule"], row["level"], row["critical"]) == (event, rule, level, critical), row
    # every route of the app is listed, HEAD/OPTIONS (added by Flask) are not
    assert {r["method"] for r in report["routes"]} == {"GET", "POST", "PUT", "DELETE"}
    assert len(report["routes"]) == 15 and report["uncovered_critical"] == []


def test_flask_gate_fails_when_a_rule_is_removed_and_names_the_route(tmp_path: Path) -> None:
    policy = without(FLASK_POLICY, "deletes", tmp_path)
    result = coverage(tmp_path, "--app", "examples.flask_app.app:app", "--policy", str(policy))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL: 1 critical entry is not covered by an explicit rule" in result.stdout
    assert ("DELETE /notes/<int:note_id> (critical: 'DELETE *'): no rule matches: falls to the policy default"
            in result.stdout)
    assert "! DELETE /notes/<int:note_id>" in result.stdout


def test_flask_gate_fails_on_level_none_for_a_critical_route(tmp_path: Path) -> None:
    policy = tmp_path / "quiet-export.yaml"
    policy.write_text(FLASK_POLICY.read_text().replace(
        "rules:\n", "rules:\n  - id: quiet-export\n    match: {path: /admin/export}\n    level: none\n", 1))
    result = coverage(tmp_path, "--app", "examples.flask_app.app:app", "--policy", str(policy), "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [(r["subject"], r["status"], r["rule"]) for r in report["uncovered_critical"]] == [
        ("GET /admin/export", "none", "quiet-export")]


def test_fastapi_example_report_and_gate(tmp_path: Path) -> None:
    result = coverage(tmp_path, "--app", "examples.fastapi_app.app:app", "--policy", str(FASTAPI_POLICY),
                      "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = rows_by_subject(report)
    assert report["framework"] == "starlette"
    assert rows["POST /admin/users/{user_id}/roles"]["rule"] == "role-changes"
    assert rows["POST /token"]["event_name"] == "audit.authentication.token_issue"
    assert rows["DELETE /notes/{note_id}"]["rule"] == "deletes"
    # tables come from the SQLAlchemy models, each with its ORM action
    assert {r["table"] for r in report["tables"]} == {"app_user", "note", "revoked_token"}
    assert rows["app_user DELETE"]["event_name"] == "audit.data_modification.delete_resource"
    assert rows["app_user DELETE"]["model"].endswith("app.User")

    failing = coverage(tmp_path, "--app", "examples.fastapi_app.app:app",
                       "--policy", str(without(FASTAPI_POLICY, "account-changes", tmp_path)))
    assert failing.returncode == 1
    for operation in ("INSERT", "UPDATE", "DELETE"):
        assert f"app_user {operation} (critical: 'app_user'): no rule matches" in failing.stdout


def test_django_settings_module_routes_and_model_tables(tmp_path: Path) -> None:
    policy = tmp_path / "django.yaml"
    policy.write_text("rules:\n  - id: admin-site\n    match: {category: admin}\n    level: full\n"
                      "critical:\n  routes: ['/admin/*']\n  tables: [auth_user]\n")
    result = coverage(tmp_path, "--app", "notesite.settings", "--app-dir", str(REPO / "examples" / "django_app"),
                      "--policy", str(policy), "--format", "json")
    report = json.loads(result.stdout)
    assert report["framework"] == "django"
    admin_rows = [r for r in report["routes"] if r["route"].startswith("/admin/")]
    # the admin site's requests are admin.request events (as the adapter records them)...
    requests = [r for r in admin_rows if r["event_name"] == "audit.admin.request"]
    assert len(requests) > 10 and all(r["rule"] == "admin-site" for r in requests)
    # ...except its login, which the built-in route classification turns into a login event
    assert rows_by_subject(report)["POST /admin/login/"]["event_name"] == "audit.authentication.login"
    assert any(r["methods_inferred"] for r in admin_rows)  # function views: every common method checked
    assert "auth_user" in {r["table"] for r in report["tables"]}
    # Django model changes and the admin login (an authentication event) match no rule here: the gate fails
    assert result.returncode == 1
    failing = {r["subject"] for r in report["uncovered_critical"]}
    assert {"auth_user INSERT", "auth_user UPDATE", "auth_user DELETE", "POST /admin/login/"} <= failing
    # the admin site's login, logout and password routes are named by the built-in routes (not
    # category admin), so the policy's admin-site rule does not cover them: critical and uncovered
    assert all(subject.startswith("auth_user") or "/admin/log" in subject or "password" in subject
               for subject in failing)


def test_bad_app_and_bad_policy_are_reported_clearly(tmp_path: Path) -> None:
    result = coverage(tmp_path, "--app", "no_such_module:app")
    assert result.returncode == 2
    assert "--app 'no_such_module:app': cannot import 'no_such_module'" in result.stderr
    result = coverage(tmp_path, "--app", "examples.flask_app.app:nothing")
    assert result.returncode == 2 and "has no attribute 'nothing'" in result.stderr
    result = coverage(tmp_path, "--app", "examples.flask_app.app:app", "--policy",
                      "critical: {routes: ['DELETE'], tables: [users]}")
    assert result.returncode == 1
    assert "critical.routes[0]: 'DELETE' is not \"METHOD /path-glob\" or \"/path-glob\"" in result.stderr


@pytest.mark.parametrize("document, message", [
    ("critical: {routez: ['/x']}", "critical.routez: unknown key 'routez'; did you mean 'routes'?"),
    ("critical: {routes: ['FETCH! /x']}", "critical.routes[0]: 'FETCH!' is not an HTTP method"),
    ("critical: {routes: ['GET admin']}", "critical.routes[0]: 'admin' must start with '/' or '*'"),
    ("critical: {tables: []}", "critical.tables: must not be empty"),
])
def test_critical_section_errors_name_the_path(document: str, message: str) -> None:
    from otel_audit.policy import PolicyError, load_policy

    with pytest.raises(PolicyError) as caught:
        load_policy(document, environ={})
    assert message in caught.value.report()


def test_critical_is_merged_over_extends_and_not_part_of_the_hash(tmp_path: Path) -> None:
    from otel_audit.policy import load_policy

    base = tmp_path / "base.yaml"
    base.write_text("id: base\ncritical: {routes: ['/admin/*'], tables: [users]}\n")
    child = load_policy(f"extends: {base}\ncritical: {{routes: ['DELETE *']}}\n", environ={})
    assert [r.text for r in child.model.critical.routes] == ["DELETE *", "/admin/*"]
    assert child.model.critical.tables == ("users",)
    assert load_policy("id: same", environ={}).hash == load_policy("id: same\ncritical: {tables: [x]}",
                                                                   environ={}).hash
