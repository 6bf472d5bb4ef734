"""Who did it, to whom (issue #18), on apps shaped like real ones: the FastAPI full-stack template's
OAuth2 password flow with SQLAlchemy users under ``/api/v1``, a Flask blueprint app with raw sqlite3
and ``/auth/register``; one run under uvicorn and the launcher."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from otel_audit.instrumentation.dbapi import Sqlite3AuditInstrumentor
from tests.instrumentation.apps import from_otlp, from_sink, one, where
from tests.instrumentation.conftest import _started
from tests.instrumentation.test_one_record_per_action import blog  # noqa: F401 - the tutorial-shaped blog app
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.procs import REPO, Server, base_env, free_port, launcher

HMAC_KEY = "identity-test-key-0123456789"


def _template_session(client) -> dict[str, object]:
    """Sign-up, a failed and a good token login, a superuser's escalation of the new user, a password
    change, a recovery request and a deletion; returns facts the records are checked against."""
    facts: dict[str, object] = {}
    facts["signup"] = client.post("/api/v1/users/signup", json={"email": "new@example.com", "password": "pw-1"}).json()
    facts["bad_login"] = client.post("/api/v1/login/access-token", data={"username": "admin@example.com",
                                                                         "password": "admin-pw-typo"}).status_code
    admin = client.post("/api/v1/login/access-token", data={"username": "admin@example.com", "password": "admin-pw"})
    facts["token"] = admin.json()["access_token"]
    headers = {"Authorization": f"Bearer {facts['token']}"}
    new_id = facts["signup"]["id"]  # type: ignore[index]
    facts["promote"] = client.patch(f"/api/v1/users/{new_id}", json={"is_superuser": True}, headers=headers).status_code
    facts["password"] = client.patch("/api/v1/users/me/password", headers=headers,
                                     json={"current_password": "admin-pw", "new_password": "admin-pw-2"}).status_code
    facts["recovery"] = client.post("/api/v1/password-recovery/new@example.com").status_code
    facts["disable"] = client.patch(f"/api/v1/users/{new_id}", json={"is_active": False}, headers=headers).status_code
    facts["delete"] = client.delete(f"/api/v1/users/{new_id}", headers=headers).status_code
    facts["health"] = client.get("/api/v1/utils/health-check/").status_code
    return facts


def _check_template(records, facts) -> None:
    new_id = str(facts["signup"]["id"])
    signup = one(records, audit__action="create_user", url__path="/api/v1/users/signup")
    assert signup.get("audit.category") == "account_management" and signup.get("ocsf.activity_id") == 1
    assert (signup.get("audit.target.type"), signup.get("audit.target.id")) == ("user", new_id)

    failed = one(records, audit__action="login_failed")
    assert (failed.get("audit.attempted_username") or "").startswith("[HMAC:")
    token = one(records, audit__action="token_issue", audit__outcome="success")
    # who logged in: the issued token's subject (unverified) and the username the form sent
    assert token.get("enduser.id") == "1" and token.get("user.name") == "admin@example.com"
    assert token.get("audit.actor.verified") is False and token.get("audit.actor.source") == "issued_token"

    grant = one(records, audit__action="grant_role")
    assert grant.get("audit.category") == "authorization" and grant.get("audit.role.names") == ["superuser"]
    assert (grant.get("audit.target.type"), grant.get("audit.target.id")) == ("user", new_id)
    assert grant.get("enduser.id") == "1" and grant.get("ocsf.class_uid") == 3007

    change = one(records, audit__action="password_change")
    assert change.get("audit.target.id") == "1" and change.get("audit.changes.fields") == ["hashed_password"]
    reset = one(records, audit__action="password_reset", http__route="/api/v1/password-recovery/{email}")
    assert "new@example.com" not in str(reset.attributes)  # the e-mail in the path is pseudonymised
    disabled = one(records, audit__action="disable_user")
    assert disabled.get("audit.target.id") == new_id and disabled.get("audit.changes.fields") == ["is_active"]
    deleted = one(records, audit__action="delete_user")
    assert deleted.get("audit.target.id") == new_id
    # a quiet default: the successful health probe is not on the trail
    assert not where(records, url__path="/api/v1/utils/health-check/")


def test_fastapi_template_identities_in_process(tmp_path, monkeypatch, instrument):
    from fastapi.testclient import TestClient

    from otel_audit.instrumentation.starlette import StarletteAuditInstrumentor
    from otel_audit.instrumentation.sqlalchemy import SQLAlchemyAuditInstrumentor

    monkeypatch.setenv("OTEL_AUDIT_HMAC_KEY", HMAC_KEY)
    instrument(StarletteAuditInstrumentor(), SQLAlchemyAuditInstrumentor(), Sqlite3AuditInstrumentor())
    from tests.instrumentation.apps import fresh_import

    for audit in _started(tmp_path, monkeypatch):
        monkeypatch.setenv("OTEL_AUDIT_HMAC_KEY", HMAC_KEY)
        module = fresh_import("examples.fastapi_template.app")
        module.init_db()
        with TestClient(module.app) as client:
            facts = _template_session(client)
        raw = audit.sink.read_text() if audit.records() else ""
        _check_template(from_sink(audit.records()), facts)
        assert facts["token"] not in raw and "admin-pw" not in raw  # never the token, never a password
        # an investigator finds the failed logins for a name without it being stored in clear
        pseudonym = subprocess.run([sys.executable, "-m", "otel_audit.cli", "hash", "admin@example.com"],
                                   env={"OTEL_AUDIT_HMAC_KEY": HMAC_KEY, "PATH": "/usr/bin:/bin"},
                                   capture_output=True, text=True, check=True).stdout.strip()
        assert one(from_sink(audit.records()), audit__action="login_failed").get("audit.attempted_username") == pseudonym


def test_fastapi_template_identities_under_uvicorn_and_the_launcher(tmp_path):
    port = free_port()
    with OtlpReceiver() as receiver:
        env = base_env(OTEL_LOGS_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                       OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_AUDIT_QUIET="1", OTEL_AUDIT_HMAC_KEY=HMAC_KEY,
                       TEMPLATE_DATABASE_URL=f"sqlite:///{tmp_path / 'template.db'}")
        subprocess.run([sys.executable, "-c", "from examples.fastapi_template.app import init_db; init_db()"],
                       cwd=REPO, env=env, check=True)
        server = Server([launcher(), "uvicorn", "examples.fastapi_template.app:app", "--host", "127.0.0.1",
                         "--port", str(port)], env, f"http://127.0.0.1:{port}/api/v1/utils/health-check/",
                        cwd=REPO, log_path=tmp_path / "server.log").wait_ready()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                facts = _template_session(client)
        finally:
            server.stop()
        records = from_otlp(receiver.wait_for(lambda recs: any(r.event_name == "audit.audit_system.stop" for r in recs)))
    _check_template([r for r in records if r.event_name.startswith("audit.")], facts)
    assert facts["token"] not in json.dumps([r.attributes for r in records], default=str)


def test_flask_blog_register_refusal_escalation_and_a_quiet_default(audit, blog):  # noqa: F811
    client = blog.test_client()
    assert client.post("/auth/register", data={"username": "carol", "password": "carol-pw"}).status_code == 302
    assert client.post("/blog/create", data={"title": "t"}).status_code == 302  # logged out: to the login page
    client.post("/auth/login", data={"username": "alice", "password": "alice-pw"})
    assert client.post("/blog/3/promote").status_code == 200  # raw SQL: UPDATE user SET role = 'admin'
    assert client.post("/auth/reset-password/", data={"username": "carol"}).status_code == 200
    client.get("/blog/")  # a plain successful read
    client.options("/blog/")
    records = from_sink(audit.records())
    signup = one(records, audit__action="create_user", url__path="/auth/register")
    assert signup.get("audit.target.type") == "user" and signup.get("audit.changes.fields") == ["username", "password"]
    assert "carol-pw" not in json.dumps([r.attributes for r in records])
    refused = one(records, url__path="/blog/create")
    assert (refused.get("audit.outcome"), refused.get("audit.outcome.reason")) == ("denied", "unauthenticated")
    grant = one(records, audit__action="grant_role")
    assert grant.get("audit.role.names") == ["admin"] and grant.get("audit.target.id") == "3"
    assert grant.get("user.name") == "alice"
    assert not where(records, url__path="/blog/"), "successful reads and OPTIONS are not recorded by default"
    # the built-in route matches whatever the trailing slash
    assert one(records, url__path="/auth/reset-password/").get("audit.action") == "password_reset"


def test_all_requests_pack_records_every_request(tmp_path, monkeypatch, blog):  # noqa: F811
    for audit in _started(tmp_path, monkeypatch, "pack:all-requests"):
        client = blog.test_client()
        client.get("/blog/")
        client.options("/blog/")
        assert len(where(from_sink(audit.records()), url__path="/blog/")) == 2


def test_a_row_the_adapter_knows_is_the_user_model_is_named_whatever_its_table() -> None:
    """Django says which model is AUTH_USER_MODEL (``Change.account``); the policy's identity rules then
    name the change, so a custom user model called ``people.Person`` gets the same actions as ``auth_user``."""
    from otel_audit.event import Change
    from otel_audit.identity import IdentityRules

    rules = IdentityRules()
    promoted = Change("data_modification", "update_resource", table="people_person", type="people.person", id="7",
                      fields=("is_staff",), values={"is_staff": {"old": False, "new": True}}, account=True)
    assert rules.refine(promoted)
    assert (promoted.action, promoted.attributes["audit.role.names"]) == ("grant_role", ["staff"])
    unmarked = Change("data_modification", "update_resource", table="people_person", type="people.person", id="7",
                      fields=("is_staff",), values={"is_staff": {"old": False, "new": True}})
    assert not rules.refine(unmarked) and unmarked.action == "update_resource"
