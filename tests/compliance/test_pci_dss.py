"""PCI DSS v4.0.1 10.2.1.1-10.2.1.7 under ``pack:pci-dss``: each test drives an example app through
the event the requirement names and checks the record carries every 10.2.2 detail (user, event
type, time, success/failure, origination, affected resource).

The test ids here are the ones ``otel_audit/policy/packs/traceability/pci-dss.yaml`` cites as
evidence (tests/compliance/test_traceability.py keeps them in step).
"""

from __future__ import annotations


import time

import pytest

from otel_audit.compliance import load_traceability
from otel_audit.demo import read_trail, serve_example
from tests.compliance.conftest import (POLICIES, add_maintenance_route, assert_changes_hold_no_values,
                                      assert_pci_details, changes, login, tags)

ALICE, BOB = "1", "2"  # ids of the Flask example's seeded users (bob is its admin)
PAN = "4111 1111 1111 1111"


@pytest.mark.audit_policy(str(POLICIES / "notes-cardholder-data.yaml"))
def test_10_2_1_1_individual_access_to_cardholder_data(client, audit_trail):
    """The notes app keeps card numbers in notes; a policy extending the pack names notes as
    cardholder data, and each user's reads of it are recorded with the user."""
    login(client, "alice", "correct horse")
    note_id = client.post("/notes", json={"title": "card on file", "body": PAN}).get_json()["id"]
    audit_trail.clear()
    started = time.time_ns()

    assert client.get(f"/notes/{note_id}").status_code == 200

    # One record for the view: the request, named by the cardholder-data read it made.
    audit_trail.assert_audited(count=1, method="GET", route="/notes/<int:note_id>")
    read = assert_pci_details(audit_trail.assert_audited(
        event="audit.data_access.read_resource", method="GET", route="/notes/<int:note_id>", table="notes",
        target_type="notes", actor=ALICE, outcome="success", rule="notes-are-cardholder-data", level="metadata"))
    assert "pci-dss:10.2.1.1" in tags(read)
    assert read["time_unix_nano"] >= started
    assert read["attributes"]["client.address"] == "127.0.0.1"
    assert read["attributes"]["audit.policy.id"] == "notes-pci"
    assert read["attributes"]["url.path"] == f"/notes/{note_id}"
    # Database reads elsewhere stay off (the pack's default): the users table is not cardholder
    # data, so the app's session lookup is neither a record nor part of the view's changes.
    assert [entry["type"] for entry in changes(read)] == ["notes"]
    audit_trail.assert_not_audited(event="audit.data_access.read_resource", table="users")
    assert_changes_hold_no_values(read)
    audit_trail.assert_no_secrets(PAN.replace(" ", ""), PAN)


@pytest.mark.audit_policy("pack:pci-dss")
def test_10_2_1_2_actions_by_administrators(client, audit_trail):
    login(client, "bob", "battery staple")  # bob has the example's admin role
    audit_trail.clear()

    assert client.get("/admin/users").status_code == 200
    assert client.get("/admin/export").status_code == 200
    assert client.post("/notes", json={"title": "admin note"}).status_code == 201

    # One record per action, named by what it did: a read of the users table, the app's own
    # @audited export, a note created.
    recorded = {}
    for method, route, event, table in (("GET", "/admin/users", "audit.data_access.read_resource", "users"),
                                        ("GET", "/admin/export", "audit.data_access.export", "users"),
                                        ("POST", "/notes", "audit.data_modification.create_resource", "notes")):
        audit_trail.assert_audited(count=1, method=method, route=route)
        record = recorded[route] = assert_pci_details(audit_trail.assert_audited(
            event=event, method=method, route=route, table=table, actor=BOB, rule="pci-dss.admin-actions",
            level="request", outcome="success"))
        assert "pci-dss:10.2.1.2" in tags(record)
        assert "admin" in record["attributes"]["user.roles"]
    assert recorded["/admin/export"]["attributes"]["audit.target.type"] == "user_list"
    # The admin's request body is kept (request level) - and redacted like everything else.
    create = recorded["/notes"]
    assert create["attributes"]["audit.request.body"] == {"title": "admin note"}
    assert changes(create, action="create_resource", type="notes", rows=1)


@pytest.mark.audit_policy("pack:pci-dss")
def test_10_2_1_3_access_to_audit_logs_inside_the_app(notes_app, audit_trail):
    """The example has no audit-log page; an app that has one (added here to the example's app)
    gets its views recorded. Access to the trail outside the app is stated as out of reach."""
    from flask import g, jsonify

    @notes_app.get("/admin/audit-log")
    def audit_log_view():
        if g.user is None or g.user["role"] != "admin":
            return jsonify(error="forbidden"), 403
        return jsonify(records=[])

    client = notes_app.test_client()
    login(client, "bob", "battery staple")
    alice = notes_app.test_client()
    login(alice, "alice", "correct horse")
    audit_trail.clear()

    assert client.get("/admin/audit-log").status_code == 200
    assert alice.get("/admin/audit-log").status_code == 403

    viewed = assert_pci_details(audit_trail.assert_audited(
        event="audit.data_access.read_audit_log", actor=BOB, outcome="success", rule="pci-dss.audit-log-access"))
    assert "pci-dss:10.2.1.3" in tags(viewed) and viewed["attributes"]["http.route"] == "/admin/audit-log"
    assert_pci_details(audit_trail.assert_audited(event="audit.data_access.read_audit_log", actor=ALICE,
                                                  outcome="denied"))
    requirement = load_traceability("pci-dss").requirement("10.2.1.3")
    assert requirement.status == "partial" and "outside the application" in requirement.limits


@pytest.mark.audit_policy("pack:pci-dss")
def test_10_2_1_4_invalid_logical_access_attempts(client, audit_trail):
    assert login(client, "alice", "hunter2-wrong").status_code == 200  # the form again
    assert client.get("/notes").status_code == 401  # not signed in
    login(client, "alice", "correct horse")
    assert client.get("/admin/users").status_code == 403  # signed in, not allowed

    failed = assert_pci_details(audit_trail.assert_audited(
        event="audit.authentication.login_failed", outcome="failure", rule="pci-dss.invalid-logins",
        attributes={"audit.attempted_username": "alice"}))  # the pack keeps it in clear (10.2.2)
    unauthenticated = assert_pci_details(audit_trail.assert_audited(
        event="audit.http.request", route="/notes", status=401, outcome="failure", rule="pci-dss.unauthenticated"))
    assert unauthenticated["attributes"]["audit.actor.type"] == "anonymous"
    denied = assert_pci_details(audit_trail.assert_audited(
        event="audit.http.request", route="/admin/users", status=403, outcome="denied", actor=ALICE,
        rule="pci-dss.access-denied"))
    for record in (failed, unauthenticated, denied):
        assert "pci-dss:10.2.1.4" in tags(record)
    audit_trail.assert_no_secrets("hunter2-wrong")


@pytest.mark.audit_policy("pack:pci-dss")
def test_10_2_1_5_privilege_elevation_and_account_deletion(client, audit_trail):
    # The app's start-up seeding of its users table (outside any request, one record for the
    # transaction) is a change to the credential store too: recorded as the process, no values.
    seeded = assert_pci_details(audit_trail.assert_audited(
        count=1, event="audit.account_management.create_user", table="users",
        rule="pci-dss.account-and-privilege-changes", attributes={"audit.actor.type": "system"}))
    # the seeded rows of the user table are account creations, whichever layer wrote them
    assert "pci-dss:10.2.1.5" in tags(seeded) and changes(seeded, action="create_user", type="users", rows=3)
    assert "db.query.parameters" not in seeded["attributes"]  # the password hashes
    assert_changes_hold_no_values(seeded)
    login(client, "bob", "battery staple")
    audit_trail.clear()

    assert client.post("/admin/users/alice/role", json={"role": "admin"}).status_code == 200
    assert client.delete("/admin/users/carol").status_code == 204

    grant = assert_pci_details(audit_trail.assert_audited(
        count=1, event="audit.authorization.grant_role", actor=BOB, outcome="success", target_id="alice",
        rule="pci-dss.account-and-privilege-changes", level="request", route="/admin/users/<username>/role"))
    assert grant["attributes"]["audit.request.body"] == {"role": "admin"}
    assert grant["attributes"]["audit.classification.route"] == "security.grant-role"
    assert grant["attributes"]["ocsf.class_uid"] == 3007 and grant["attributes"]["ocsf.activity_id"] == 16
    deleted = assert_pci_details(audit_trail.assert_audited(
        count=1, event="audit.account_management.delete_user", actor=BOB, outcome="success", target_id="carol",
        rule="pci-dss.account-and-privilege-changes", level="request", route="/admin/users/<username>"))
    assert deleted["attributes"]["url.path"] == "/admin/users/carol"
    assert deleted["attributes"]["ocsf.class_uid"] == 3007 and deleted["attributes"]["ocsf.activity_id"] == 3
    # The rows behind them are folded into each action's record (no statement records of their
    # own): which table, how many rows - never the bound values.
    for record, action in ((grant, "grant_role"), (deleted, "delete_user")):  # user-table rows: account actions
        assert "pci-dss:10.2.1.5" in tags(record)
        print("CH", record["attributes"].get("audit.changes")); assert changes(record, action=action, type="users", rows=1), record["attributes"].get("audit.changes")
        assert record["attributes"]["db.collection.name"] == "users"
        assert "db.query.parameters" not in record["attributes"]
        assert_changes_hold_no_values(record)
    audit_trail.assert_not_audited(category="data_modification", table="users")


def test_10_2_1_5_account_creation_and_group_changes_in_django(tmp_path):
    """The Django example under the real launcher with pack:pci-dss: a superuser creates an account
    in the admin site, adds a user to a group, makes them staff and deletes the new account."""
    from examples.django_app.traffic import HttpClient, login as django_login

    sink = tmp_path / "audit.jsonl"
    with serve_example("django", sink, tmp_path, policy="pack:pci-dss") as base_url:
        alice, status = django_login(lambda: HttpClient(base_url), "alice", "alice-pw")
        assert status == 302
        alice.get("/admin/auth/user/add/")
        created = alice.post("/admin/auth/user/add/", {"username": "dave", "password1": "Tr1cky-Pass-9x",
                                                       "password2": "Tr1cky-Pass-9x", "usable_password": "true",
                                                       "_save": "Save"})
        assert created.status_code == 302, created.text[:2000]
        dave_id = created.headers["Location"].rstrip("/").split("/")[-2]
        assert alice.post("/staff/users/3/groups/", {"group": "editors"}).status_code == 200
        assert alice.post("/staff/users/3/promote/").status_code == 200
        alice.get(f"/admin/auth/user/{dave_id}/delete/")
        assert alice.post(f"/admin/auth/user/{dave_id}/delete/", {"post": "yes"}).status_code == 302
    records = read_trail(sink)

    def one(**wanted):
        found = [r for r in records if all(r["attributes"].get(k) == v for k, v in wanted.items())]
        assert found, f"no record with {wanted}: {[r['event_name'] for r in records]}"
        return assert_pci_details(found[0])

    # One record per request. On the admin site the request keeps category admin and is named by
    # its primary change (audit.admin.create_user): pci-dss.admin-site-account-changes takes it.
    create = one(**{"audit.action": "create_user", "audit.target.id": dave_id,
                    "http.route": "/admin/auth/user/add/", "http.request.method": "POST"})
    group = one(**{"audit.category": "authorization", "audit.action": "grant_role", "audit.target.id": "3",
                   "audit.role.names": ["editors"]})
    staff = one(**{"audit.category": "authorization", "audit.action": "grant_role", "audit.target.id": "3",
                   "audit.role.names": ["staff"]})
    delete = one(**{"audit.action": "delete_user", "audit.target.id": dave_id, "http.request.method": "POST"})
    for record in (create, group, staff, delete):
        attrs = record["attributes"]
        assert attrs["enduser.id"] == "1" and attrs["audit.policy.id"] == "pci-dss"
        assert attrs["audit.rule"] in ("pci-dss.account-and-privilege-changes", "pci-dss.admin-site-account-changes")
        assert "pci-dss:10.2.1.5" in tags(record) and attrs["audit.level"] == "request"
        assert attrs["client.address"] == "127.0.0.1"
        assert attrs["ocsf.class_uid"] == 3007
        assert_changes_hold_no_values(record)
    assert {r["attributes"]["ocsf.activity_id"] for r in (create, group, staff, delete)} == {1, 16, 3}
    # What changed, by name: the new account's fields (its password among them, never its value),
    # the group row, the staff flag.
    assert "password" in changes(create, action="create_user", id=dave_id)[0]["fields"]
    assert changes(group, action="grant_role", id="3", table="auth_user_groups")
    assert changes(staff, action="grant_role", id="3", fields=["is_staff"])
    assert changes(delete, action="delete_user", id=dave_id, table="auth_user")
    assert "Tr1cky-Pass-9x" not in sink.read_text()


def test_10_2_1_6_start_and_stop_of_auditing_under_the_launcher(tmp_path):
    sink = tmp_path / "audit.jsonl"
    with serve_example("flask", sink, tmp_path, policy="pack:pci-dss") as base_url:
        import requests

        requests.get(f"{base_url}/", timeout=5)
    records = read_trail(sink)
    lifecycle = {r["event_name"]: r for r in records if r["event_name"].startswith("audit.audit_system.")}
    assert {"audit.audit_system.start", "audit.audit_system.policy_loaded",
            "audit.audit_system.stop"} <= set(lifecycle)
    names = [r["event_name"] for r in records]
    assert names[0] == "audit.audit_system.start" and names[-1] == "audit.audit_system.stop"
    for record in lifecycle.values():
        assert_pci_details(record)
        assert record["attributes"]["audit.actor.type"] == "system"
        assert record["resource"]["service.name"] == "notes-demo"
        assert record["attributes"]["audit.policy.source"] == "pack:pci-dss"
    loaded = lifecycle["audit.audit_system.policy_loaded"]["attributes"]
    assert loaded["audit.policy.id"] == "pci-dss" and loaded["audit.policy.hash"].startswith("sha256:")


def test_10_2_1_6_a_rejected_policy_is_recorded(tmp_path, monkeypatch):
    """A broken policy does not pause auditing silently: the rejection is a record of its own."""
    from otel_audit import runtime
    from otel_audit.delivery.sink import read_sink

    broken = tmp_path / "broken.yaml"
    broken.write_text("extends: pack:pci-dss\nrules:\n  - match: {category: nonsense}\n")
    sink = tmp_path / "audit.jsonl"
    for name, value in {"OTEL_AUDIT_POLICY": str(broken), "OTEL_AUDIT_SINK_PATH": str(sink),
                        "OTEL_AUDIT_EXPORTER": "sink", "OTEL_AUDIT_QUIET": "1",
                        "OTEL_AUDIT_SPOOL_DIR": str(tmp_path / "spool"), "OTEL_AUDIT_SPOOL_ACK": "write"}.items():
        monkeypatch.setenv(name, value)
    runtime.reset_for_tests()
    try:
        runtime.start()
    finally:
        runtime.reset_for_tests()
    records = {r["event_name"]: r for r in read_sink(sink)}
    invalid = assert_pci_details(records["audit.audit_system.policy_invalid"])
    assert invalid["attributes"]["audit.outcome"] == "failure"
    assert "nonsense" in invalid["attributes"]["audit.outcome.reason"]
    assert "audit.audit_system.stop" in records


@pytest.mark.audit_policy("pack:pci-dss")
def test_10_2_1_7_creation_and_deletion_of_system_level_objects(notes_app, audit_trail):
    """DDL through the app's own connection, by an administrator, in a request (the maintenance
    view is added to the example's app: it has none)."""
    add_maintenance_route(notes_app)
    client = notes_app.test_client()
    login(client, "bob", "battery staple")
    audit_trail.clear()

    assert client.post("/admin/maintenance/archive").status_code == 200

    # pci-dss.system-objects records DDL statement by statement (granularity: statement): folded
    # into the request's record, the CREATE and the DROP of one table would be one schema_change
    # entry, and the deletion could not be told from the creation.
    for verb in ("CREATE", "DROP"):
        record = assert_pci_details(audit_trail.assert_audited(
            count=1, event="audit.configuration.schema_change", operation=verb, table="notes_archive", actor=BOB,
            rule="pci-dss.system-objects", level="request"))
        assert record["attributes"]["db.query.text"].startswith(f"{verb} TABLE notes_archive")
        assert "db.query.parameters" not in record["attributes"]
        assert record["attributes"]["http.route"] == "/admin/maintenance/archive"
        assert "pci-dss:10.2.1.7" in tags(record)


def test_10_2_2_every_record_of_the_example_session_has_the_details(tmp_path):
    """The Flask example's whole scripted session, served under the launcher with pack:pci-dss:
    not one record lacks a 10.2.2 detail, and none is marked incomplete."""
    from otel_audit.demo import EXAMPLES

    sink = tmp_path / "audit.jsonl"
    with serve_example("flask", sink, tmp_path, policy="pack:pci-dss") as base_url:
        steps = EXAMPLES["flask"].drive(base_url)
    assert ("bob: grant alice editor", 200) in steps
    records = read_trail(sink)
    assert len(records) > len(steps)  # every step that changes, authenticates, fails or is refused, and more
    problems = [(r["event_name"], r["attributes"]) for r in records if assert_details_missing(r)]
    assert not problems, problems
    incomplete = [r for r in records if r["attributes"].get("audit.incomplete")]
    # only the start-up seeding of the user table, outside any request: its process is named
    # (pid:N), and it has no client address to give - the record says so instead of inventing one
    assert [(r["event_name"], r["attributes"]["audit.incomplete.fields"], r["attributes"]["enduser.id"][:4])
            for r in incomplete] == [("audit.account_management.create_user", ["client.address"], "pid:")]
    names = {r["event_name"] for r in records}
    assert {"audit.authentication.login_failed", "audit.authorization.grant_role",
            "audit.account_management.delete_user", "audit.data_access.export"} <= names


def assert_details_missing(record):
    from otel_audit.compliance import missing_details

    return missing_details(record, "pci-dss")
