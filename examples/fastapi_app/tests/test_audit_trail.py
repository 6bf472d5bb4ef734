"""The FastAPI notes app's audit trail, tested with the ``audit_trail`` fixture."""

from __future__ import annotations

import pytest
from conftest import bearer

pytestmark = pytest.mark.audit_policy("policy.yaml")

ALICE_ID, BOB_ID = "1", "2"


def test_failed_token_request_is_a_failed_login(client, audit_trail):
    assert client.post("/token", json={"username": "alice", "password": "not-her-password"}).status_code == 401

    audit_trail.assert_audited(event="audit.authentication.login_failed", outcome="failure", route="/token")
    audit_trail.assert_no_secrets("not-her-password")


def test_issued_tokens_never_reach_the_trail(client, audit_trail):
    response = client.post("/token", json={"username": "alice", "password": "alice-pw"})
    token = response.json()["access_token"]
    client.post("/notes", json={"title": "t", "body": "b"}, headers={"Authorization": f"Bearer {token}"})

    # the login names who logged in (the issued token's subject), the next request is by that user
    audit_trail.assert_audited(event="audit.authentication.token_issue", outcome="success", actor=ALICE_ID)
    audit_trail.assert_audited(event="audit.data_modification.create_resource", route="/notes", actor=ALICE_ID)
    audit_trail.assert_no_secrets(token, "alice-pw")


def test_role_grant_by_an_admin(client, audit_trail):
    alice = bearer(client, "alice", "alice-pw")
    audit_trail.clear()

    assert client.post("/admin/users/2/roles", json={"role": "editor"}, headers=alice).status_code == 200

    grant = audit_trail.assert_audited(event="audit.authorization.grant_role", outcome="success", actor=ALICE_ID,
                                       rule="role-changes", level="full", route="/admin/users/{user_id}/roles")
    # one record for the grant: the ORM row change it made is inside it, with its changed field
    (change,) = [c for c in grant["attributes"]["audit.changes"] if c["action"] != "read_resource"]
    assert (change["action"], change["type"], change["id"], change["fields"]) == ("grant_role", "app_user", "2",
                                                                                  ["roles"])


def test_role_grant_by_a_member_is_denied_and_recorded(client, audit_trail):
    bob = bearer(client, "bob", "bob-pw")
    audit_trail.clear()

    assert client.post("/admin/users/1/roles", json={"role": "admin"}, headers=bob).status_code == 403

    audit_trail.assert_audited(event="audit.authorization.grant_role", outcome="denied", actor=BOB_ID)
    audit_trail.assert_not_audited(event="audit.data_modification.*", table="app_user")


def test_every_record_meets_the_schema(client, audit_trail):
    alice = bearer(client, "alice", "alice-pw")
    note = client.post("/notes", json={"title": "plan", "body": "draft"}, headers=alice).json()
    client.delete(f"/notes/{note['id']}", headers=alice)
    client.get("/reports/crash", headers=alice)

    audit_trail.assert_audited(event="audit.data_modification.delete_resource", method="DELETE", rule="deletes",
                               status=204, table="note")
    audit_trail.assert_audited(event="audit.http.request", outcome="failure", status=500)
    audit_trail.assert_schema()
