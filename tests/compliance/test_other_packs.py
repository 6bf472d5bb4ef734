"""SOC 2, HIPAA and GDPR packs driven through the Flask notes example (examples/flask_app): each
test is the evidence its pack's traceability file cites for one criterion, standard or article."""

from __future__ import annotations

import re

import pytest

from tests.compliance.conftest import POLICIES, add_maintenance_route, login, tags

ALICE, BOB = "1", "2"
HMAC = re.compile(r"^\[HMAC:[0-9a-f]{20}\]$")
PAYLOADS = ("audit.request.body", "audit.response.body", "db.query.text", "db.query.parameters", "audit.changes",
            "url.query")


# ---------------------------------------------------------------------------------------------
# SOC 2


@pytest.mark.audit_policy("pack:soc2")
def test_soc2_cc6_1_sign_ins_and_failed_attempts(client, audit_trail):
    login(client, "alice", "wrong-password")
    login(client, "alice", "correct horse")
    client.post("/logout")

    for event, outcome in (("login_failed", "failure"), ("login", "success"), ("logout", "success")):
        record = audit_trail.assert_audited(event=f"audit.authentication.{event}", outcome=outcome,
                                            rule="soc2.sign-ins")
        assert "soc2:CC6.1" in tags(record) and record["attributes"]["client.address"] == "127.0.0.1"
    audit_trail.assert_audited(event="audit.authentication.login", actor=ALICE)


@pytest.mark.audit_policy("pack:soc2")
def test_soc2_cc6_2_account_removal(client, audit_trail):
    login(client, "bob", "battery staple")
    assert client.delete("/admin/users/carol").status_code == 204

    removed = audit_trail.assert_audited(event="audit.account_management.delete_user", actor=BOB, outcome="success",
                                         rule="soc2.account-lifecycle", level="request")
    assert "soc2:CC6.2" in tags(removed) and removed["attributes"]["url.path"] == "/admin/users/carol"


@pytest.mark.audit_policy("pack:soc2")
def test_soc2_cc6_3_role_changes_and_privileged_actions(client, audit_trail):
    member = client.application.test_client()
    login(member, "alice", "correct horse")
    login(client, "bob", "battery staple")

    assert member.post("/admin/users/alice/role", json={"role": "admin"}).status_code == 403
    assert client.post("/admin/users/alice/role", json={"role": "editor"}).status_code == 200
    assert client.get("/admin/users").status_code == 200

    refused = audit_trail.assert_audited(event="audit.authorization.grant_role", actor=ALICE, outcome="denied",
                                         rule="soc2.access-changes")
    granted = audit_trail.assert_audited(event="audit.authorization.grant_role", actor=BOB, outcome="success",
                                         rule="soc2.access-changes", level="request")
    assert granted["attributes"]["audit.request.body"] == {"role": "editor"}
    privileged = audit_trail.assert_audited(event="audit.http.request", route="/admin/users", actor=BOB,
                                            rule="soc2.privileged-actions")
    for record in (refused, granted, privileged):
        assert "soc2:CC6.3" in tags(record)


@pytest.mark.audit_policy("pack:soc2")
def test_soc2_cc7_2_refused_and_failed_requests(client, audit_trail):
    login(client, "alice", "correct horse")
    assert client.get("/admin/export").status_code == 403
    assert client.get("/boom").status_code == 500

    denied = audit_trail.assert_audited(event="audit.http.request", route="/admin/export", outcome="denied",
                                        actor=ALICE)
    audit_trail.assert_audited(event="audit.data_access.export", outcome="denied", actor=ALICE,
                               rule="soc2.security-events")  # the @audited export, refused by abort(403)
    crashed = audit_trail.assert_audited(event="audit.http.request", route="/boom", outcome="failure", status=500,
                                         rule="soc2.security-events", attributes={"error.type": "RuntimeError"})
    assert "soc2:CC7.2" in tags(crashed)
    assert denied["attributes"]["audit.rule"] == "soc2.security-events"


@pytest.mark.audit_policy("pack:soc2")
def test_soc2_cc8_1_schema_changes(notes_app, audit_trail):
    add_maintenance_route(notes_app)
    client = notes_app.test_client()
    login(client, "bob", "battery staple")

    assert client.post("/admin/maintenance/archive").status_code == 200

    change = audit_trail.assert_audited(event="audit.configuration.schema_change", operation="CREATE", actor=BOB,
                                        table="notes_archive", rule="soc2.system-changes", level="request")
    assert "soc2:CC8.1" in tags(change) and change["attributes"]["db.query.text"].startswith("CREATE TABLE")


# ---------------------------------------------------------------------------------------------
# HIPAA


@pytest.mark.audit_policy(str(POLICIES / "notes-ephi.yaml"))
def test_hipaa_ephi_access_recorded_at_metadata_level(client, audit_trail):
    login(client, "alice", "correct horse")
    note_id = client.post("/notes", json={"title": "visit", "body": "diagnosis: J45.909 asthma"}).get_json()["id"]
    client.get(f"/notes/{note_id}")

    read = audit_trail.assert_audited(event="audit.data_access.query", table="notes", actor=ALICE,
                                      rule="notes-are-ephi", level="metadata")
    view = audit_trail.assert_audited(event="audit.http.request", method="GET", route="/notes/<int:note_id>",
                                      actor=ALICE, rule="note-endpoints-are-ephi")
    for record in (read, view):
        assert "hipaa:164.312(b)" in tags(record)
        assert not set(PAYLOADS) & set(record["attributes"])
    audit_trail.assert_no_secrets("J45.909", "asthma")


@pytest.mark.audit_policy("pack:hipaa")
def test_hipaa_log_in_monitoring(client, audit_trail):
    login(client, "carol", "not-her-password")
    login(client, "carol", "tr0ub4dor")

    failed = audit_trail.assert_audited(event="audit.authentication.login_failed", rule="hipaa.log-in-monitoring",
                                        attributes={"audit.attempted_username": "carol"})
    ok = audit_trail.assert_audited(event="audit.authentication.login", actor="3", rule="hipaa.log-in-monitoring")
    for record in (failed, ok):
        assert {"hipaa:164.308(a)(5)(ii)(C)", "hipaa:164.312(d)"} <= set(tags(record))
    audit_trail.assert_no_secrets("not-her-password", "tr0ub4dor")


@pytest.mark.audit_policy("pack:hipaa")
def test_hipaa_access_establishment_and_modification(client, audit_trail):
    login(client, "bob", "battery staple")
    client.post("/admin/users/carol/role", json={"role": "editor"})
    client.delete("/admin/users/carol")

    for event in ("audit.authorization.grant_role", "audit.account_management.delete_user"):
        record = audit_trail.assert_audited(event=event, actor=BOB, outcome="success", rule="hipaa.access-changes",
                                            level="metadata")
        assert "hipaa:164.308(a)(4)(ii)(C)" in tags(record)
        assert "audit.request.body" not in record["attributes"]  # minimum necessary


@pytest.mark.audit_policy(str(POLICIES / "notes-ephi.yaml"))
def test_hipaa_unique_user_identification(client, audit_trail):
    """ePHI access by a signed-in user names them; a record that cannot name a user is flagged."""
    login(client, "alice", "correct horse")
    client.post("/notes", json={"title": "visit"})

    written = audit_trail.assert_audited(event="audit.data_modification.insert", table="notes", actor=ALICE)
    assert "audit.incomplete" not in written["attributes"]
    # The app's start-up seeding of its users table ran outside any request: no user to name.
    seeded = audit_trail.assert_audited(event="audit.data_modification.insert", table="users")
    assert seeded["attributes"]["audit.incomplete"] is True
    assert seeded["attributes"]["audit.incomplete.fields"] == ["enduser.id"]


@pytest.mark.audit_policy(str(POLICIES / "notes-ephi.yaml"))
def test_hipaa_ephi_changes_are_recorded_without_values(client, audit_trail):
    login(client, "alice", "correct horse")
    note_id = client.post("/notes", json={"title": "visit", "body": "bp 120/80"}).get_json()["id"]
    client.put(f"/notes/{note_id}", json={"title": "visit", "body": "bp 150/95 - refer"})

    change = audit_trail.assert_audited(event="audit.data_modification.update", table="notes", actor=ALICE,
                                        rule="notes-are-ephi")
    assert "hipaa:164.312(c)(1)" in tags(change)
    assert change["attributes"]["audit.chain.alg"] and "audit.chain.id" in change["attributes"]
    assert not set(PAYLOADS) & set(change["attributes"])
    audit_trail.assert_no_secrets("150/95", "refer")


# ---------------------------------------------------------------------------------------------
# GDPR


@pytest.mark.audit_policy("pack:gdpr")
def test_gdpr_people_are_pseudonymised_consistently(client, audit_trail):
    login(client, "alice", "wrong-password")
    login(client, "alice", "correct horse")
    client.get("/notes")

    failed = audit_trail.assert_audited(event="audit.authentication.login_failed")
    login_record = audit_trail.assert_audited(event="audit.authentication.login")
    listing = audit_trail.assert_audited(event="audit.http.request", route="/notes")
    assert HMAC.match(failed["attributes"]["audit.attempted_username"])
    for record in (login_record, listing):
        attrs = record["attributes"]
        assert HMAC.match(attrs["enduser.id"]) and HMAC.match(attrs["client.address"])
        assert attrs["audit.redaction.key_id"]
    # One person, one pseudonym: the records still join.
    assert login_record["attributes"]["enduser.id"] == listing["attributes"]["enduser.id"]
    assert failed["attributes"]["client.address"] == listing["attributes"]["client.address"]
    assert listing["attributes"]["user.name"] == failed["attributes"]["audit.attempted_username"]  # "alice" both
    for record in audit_trail.records:
        attrs = record["attributes"]
        assert attrs.get("client.address") in (None, listing["attributes"]["client.address"])
        assert "alice" not in str(record.get("body")) and attrs.get("user.name") != "alice"
    audit_trail.assert_no_secrets("127.0.0.1")


@pytest.mark.audit_policy("pack:gdpr")
def test_gdpr_records_hold_no_payloads(client, audit_trail):
    login(client, "bob", "battery staple")
    client.post("/notes?source=import", json={"title": "contact", "body": "call jane.doe@example.com"})
    client.post("/admin/users/alice/role", json={"role": "editor"})

    assert audit_trail.records
    for record in audit_trail.records:
        assert record["attributes"]["audit.level"] == "metadata", record
        assert not set(PAYLOADS) & set(record["attributes"]), record
        assert not any(key.startswith("http.request.header.") for key in record["attributes"])
    audit_trail.assert_no_secrets("jane.doe@example.com", "correct horse")


@pytest.mark.audit_policy("pack:gdpr")
def test_gdpr_security_events_recorded_by_pseudonym(client, audit_trail):
    login(client, "alice", "correct horse")
    client.get("/admin/users")  # refused
    admin = client.application.test_client()
    login(admin, "bob", "battery staple")
    admin.post("/admin/users/alice/role", json={"role": "editor"})

    denied = audit_trail.assert_audited(event="audit.http.request", route="/admin/users", outcome="denied",
                                        rule="gdpr.refused-access")
    grant = audit_trail.assert_audited(event="audit.authorization.grant_role", outcome="success",
                                       rule="gdpr.access-changes")
    row = audit_trail.assert_audited(event="audit.data_modification.update", table="users", rule="gdpr.personal-data")
    assert "gdpr:5(1)(f)" in tags(row)
    for record in (denied, grant, row):
        assert "gdpr:32(1)(b)" in tags(record)
        assert HMAC.match(record["attributes"]["enduser.id"])
    assert denied["attributes"]["enduser.id"] != grant["attributes"]["enduser.id"]  # alice vs bob
