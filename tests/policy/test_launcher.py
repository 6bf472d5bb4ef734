"""The policy in a real process under ``opentelemetry-instrument``, records received over OTLP."""

from __future__ import annotations

import sys
from pathlib import Path

import requests

from otel_audit.policy import FALLBACK_ID
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.procs import Server, base_env, free_port, launcher

SERVE = Path(__file__).with_name("serve_app.py")
POLICY = """\
id: launcher-test
version: "7"
routes:
  - {request: "POST /users/{id}/roles", category: authorization, action: grant_role}
rules:
  - {id: no-health, match: {path: /health}, level: none}
  - {id: role-changes, match: {category: authorization}, level: full}
"""


def _run(tmp_path: Path, policy: str, drive) -> list:
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(policy)
    with OtlpReceiver() as receiver:
        port = free_port()
        env = base_env(PORT=str(port), OTEL_AUDIT_POLICY=str(policy_path), OTEL_LOGS_EXPORTER="otlp",
                       OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                       OTEL_BLRP_SCHEDULE_DELAY="100", OTEL_SERVICE_NAME="policy-test")
        server = Server([launcher(), sys.executable, str(SERVE)], env, f"http://127.0.0.1:{port}/health",
                        cwd=str(Path(__file__).resolve().parents[2]), log_path=tmp_path / "server.log").wait_ready()
        try:
            drive(f"http://127.0.0.1:{port}")
        finally:
            server.stop(sig=2)
        receiver.wait_for(lambda recs: any(r.event_name == "audit.audit_system.stop" for r in recs))
        return receiver.audit_records()


def test_login_classified_both_ways_under_the_launcher(tmp_path: Path) -> None:
    def drive(base: str) -> None:
        session = requests.Session()
        failed = session.post(f"{base}/auth/login", data={"username": "alice", "password": "nope"},
                              allow_redirects=False)
        assert failed.status_code == 200 and "<form" in failed.text
        ok = session.post(f"{base}/auth/login", data={"username": "alice", "password": "wonderland"},
                          allow_redirects=False)
        assert ok.status_code == 302
        assert session.post(f"{base}/users/5/roles", json={"role": "editor"}).status_code == 201

    records = _run(tmp_path, POLICY, drive)
    by_name = {}
    for record in records:
        by_name.setdefault(record.event_name, []).append(record)
    [failed] = by_name["audit.authentication.login_failed"]
    assert failed.attributes["audit.outcome"] == "failure"
    assert failed.attributes["audit.attempted_username"].startswith("[HMAC:")  # pseudonymised by default
    assert "enduser.id" not in failed.attributes
    [login] = by_name["audit.authentication.login"]
    assert login.attributes["audit.outcome"] == "success"
    assert login.attributes["enduser.id"] == "u-alice"  # from the session the login set
    [grant] = by_name["audit.authorization.grant_role"]
    assert grant.attributes["audit.rule"] == "role-changes" and grant.attributes["audit.level"] == "full"
    assert grant.attributes["enduser.id"] == "u-alice"
    assert "audit.http.request" not in by_name or all(
        r.attributes.get("url.path") != "/health" for r in by_name["audit.http.request"])  # level none
    for record in records:
        assert record.attributes["audit.policy.id"] == "launcher-test"
        assert record.attributes["audit.policy.version"] == "7"
        assert record.attributes["audit.policy.hash"].startswith("sha256:")
    assert {"audit.audit_system.start", "audit.audit_system.policy_loaded", "audit.audit_system.stop"} <= set(by_name)
    assert all("wonderland" not in str(r.attributes) for r in records)


def test_broken_policy_under_the_launcher_falls_back_and_says_so(tmp_path: Path) -> None:
    def drive(base: str) -> None:
        requests.get(f"{base}/search?q=x")

    records = _run(tmp_path, "rules:\n  - level: verbose\n", drive)
    [invalid] = [r for r in records if r.event_name == "audit.audit_system.policy_invalid"]
    assert "rules[0].level: 'verbose' is not one of none, metadata, request, full" in \
        invalid.attributes["audit.outcome.reason"]
    searches = [r for r in records if r.attributes.get("url.path") == "/search"]
    assert searches and all(r.attributes["audit.level"] == "metadata" for r in searches)
    assert {r.attributes["audit.policy.id"] for r in records} == {FALLBACK_ID}
    log = (tmp_path / "server.log").read_text()
    assert "the audit policy is invalid" in log and "FALLING BACK" in log
