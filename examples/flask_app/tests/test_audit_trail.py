"""The audit trail of the notes app, tested like any other behaviour.

Two lines per test: use the ``audit_trail`` fixture, assert on what was recorded. The policy is
the example's own ``policy.yaml``; the records are exactly what would be exported (after the
policy and redaction).
"""

from __future__ import annotations

import pytest

from otel_audit.redaction.pseudonyms import pseudonymise  # tried usernames leave as pseudonyms
from conftest import login

pytestmark = pytest.mark.audit_policy("../policy.yaml")

ALICE_ID, BOB_ID = "1", "2"  # the seeded users' ids (the app's g.user is the actor)


def test_failed_login_is_recorded_without_the_password(client, audit_trail):
    response = login(client, "alice", "hunter2-wrong")
    assert response.status_code == 200  # the app answers a failed login with the form again

    audit_trail.assert_audited(event="audit.authentication.login_failed", outcome="failure",
                               attributes={"audit.attempted_username": pseudonymise("alice")})
    audit_trail.assert_not_audited(event="audit.authentication.login")
    audit_trail.assert_no_secrets("hunter2-wrong")


def test_successful_login_names_the_user(client, audit_trail):
    login(client, "alice", "correct horse")

    audit_trail.assert_audited(event="audit.authentication.login", outcome="success", actor=ALICE_ID, count=1)
    audit_trail.assert_no_secrets("correct horse")


def test_role_grant_is_recorded_in_full_with_the_admin_as_actor(client, audit_trail):
    login(client, "bob", "battery staple")
    audit_trail.clear()  # only what the grant itself records

    client.post("/admin/users/alice/role", json={"role": "editor"})

    grant = audit_trail.assert_audited(event="audit.authorization.grant_role", outcome="success", actor=BOB_ID,
                                       rule="role-changes", level="full", route="/admin/users/{username}/role")
    assert grant["attributes"]["audit.request.body"] == {"role": "editor"}
    # the role granted: the statement bound it as a parameter, the request named it
    assert grant["attributes"]["audit.role.names"] == ["editor"]
    # one record for the grant: the row it changed is inside it
    assert [(c["action"], c["type"]) for c in grant["attributes"]["audit.changes"]] == [("grant_role", "users")]


def test_a_member_cannot_grant_roles_and_the_attempt_is_recorded(client, audit_trail):
    login(client, "alice", "correct horse")
    audit_trail.clear()

    assert client.post("/admin/users/alice/role", json={"role": "admin"}).status_code == 403

    denied = audit_trail.assert_audited(event="audit.authorization.grant_role", outcome="denied", actor=ALICE_ID)
    audit_trail.assert_not_audited(event="audit.authorization.grant_role", outcome="success")
    assert "audit.changes" not in denied["attributes"]  # nothing was changed


def test_deleting_a_user_is_an_admin_event(client, audit_trail):
    login(client, "bob", "battery staple")
    assert client.delete("/admin/users/carol").status_code == 204

    deleted = audit_trail.assert_audited(event="audit.admin.delete_user", outcome="success", actor=BOB_ID,
                                         level="full", attributes={"url.path": "/admin/users/carol"}, table="users")
    assert [c["action"] for c in deleted["attributes"]["audit.changes"]] == ["delete_user"]


def test_card_numbers_in_notes_never_reach_the_trail(client, audit_trail):
    login(client, "alice", "correct horse")
    client.post("/notes", json={"title": "Q3 plan", "body": "card on file 4111 1111 1111 1111"})
    client.get("/admin/export")  # a denied bulk export, recorded too

    audit_trail.assert_audited(event="audit.data_access.export", actor=ALICE_ID)
    audit_trail.assert_audited(event="audit.data_access.export", route="/admin/export", outcome="denied", status=403)
    audit_trail.assert_no_secrets("4111 1111 1111 1111")


def test_every_record_meets_the_schema(client, audit_trail):
    login(client, "alice", "wrong")
    login(client, "bob", "battery staple")
    client.post("/admin/users/alice/role", json={"role": "editor"})
    client.delete("/admin/users/carol")
    client.get("/boom")

    audit_trail.assert_audited(event="audit.http.request", outcome="failure", status=500,
                               attributes={"error.type": "RuntimeError"})
    audit_trail.assert_schema()
