"""``otel-audit demo --app django|fastapi``: each example served under the real
``opentelemetry-instrument`` launcher (Django by ``manage.py runserver --noreload``, FastAPI by
uvicorn), its traffic.py driven over HTTP, the trail printed from the embedded sink. (The same
examples under gunicorn/uvicorn with records over OTLP: tests/instrumentation/test_django.py and
tests/instrumentation/test_fastapi.py; the Flask demo: tests/foundation/test_demo.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.procs import base_env


def demo(app: str, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otel_audit.cli", "demo", "--app", app, "--sink",
                           str(tmp_path / "audit.jsonl"), *extra], cwd=tmp_path, env=base_env(), capture_output=True,
                          text=True, timeout=180)


def test_django_demo(tmp_path):
    result = demo("django", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "starting examples/django_app under opentelemetry-instrument" in out
    for step in ("  200  login_failed", "  302  login", "  403  forbidden_delete", "  200  grant", "  500  crash"):
        assert step in out
    table = out.split("audit trail from the embedded sink", 1)[1]
    for expected in ("audit.audit_system.start", "audit.authentication.login_failed", "audit.authentication.login",
                     "audit.authorization.grant_role", "audit.admin.create_resource",
                     "audit.data_modification.delete_resource", "audit.audit_system.stop"):
        assert expected in table
    assert "role-changes" in table and "admin-site" in table  # examples/django_app/policy.yaml decided
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert {r["attributes"]["audit.policy.id"] for r in records} == {"notes-django"}
    assert not [r for r in records if r["event_name"] == "audit.data_access.read_resource"]  # reads stay off
    assert "bob-pw" not in (tmp_path / "audit.jsonl").read_text()


def test_fastapi_demo(tmp_path):
    result = demo("fastapi", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "starting examples/fastapi_app under opentelemetry-instrument" in out
    for step in ("  401  login_failed", "  403  forbidden_grant", "  200  grant", "  500  crash", "  401  after_logout"):
        assert step in out
    table = out.split("audit trail from the embedded sink", 1)[1]
    for expected in ("audit.authentication.login_failed", "audit.authentication.token_issue",
                     "audit.authorization.grant_role", "audit.data_modification.update_resource",
                     "audit.authentication.logout", "audit.audit_system.stop"):
        assert expected in table
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert {r["attributes"]["audit.policy.id"] for r in records} == {"notes-fastapi"}
    grants = [r for r in records if r["event_name"] == "audit.authorization.grant_role"]
    assert {r["attributes"]["audit.outcome"] for r in grants} == {"success", "denied"}


def test_demo_refuses_an_unknown_app(tmp_path):
    result = demo("rails", tmp_path)
    assert result.returncode == 2 and "invalid choice: 'rails'" in result.stderr


@pytest.mark.parametrize("app", ["flask", "django", "fastapi"])
def test_each_example_has_readme_policy_and_traffic(app):
    from otel_audit.demo import EXAMPLES
    from otel_audit.policy import load_policy

    example = EXAMPLES[app]
    assert (example.directory / "README.md").is_file() and (example.directory / "traffic.py").is_file()
    assert example.policy() is not None and load_policy(str(example.policy())).id.startswith("notes-")
    assert f"otel-audit demo --app {app}" in (example.directory / "README.md").read_text() or app == "flask"
