"""One record per action (issue #16): a request is one record with its database changes inside it,
named in one vocabulary whichever layer saw the change; outside requests one record per
transaction (per statement in autocommit); ``granularity: statement`` where a policy asks."""

from __future__ import annotations

import re
import sqlite3

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from examples.flask_blog import create_app, init_db
from otel_audit.instrumentation.dbapi import Sqlite3AuditInstrumentor
from otel_audit.instrumentation.flask import FlaskAuditInstrumentor
from otel_audit.instrumentation.sqlalchemy import SQLAlchemyAuditInstrumentor
from tests.instrumentation.apps import from_sink, one, one_record_per_request, where
from tests.instrumentation.conftest import _started

#: The brief's example rule, as written there.
BRIEF_POLICY = """
format: 1
id: brief
audit_configs:
  - {action: delete_resource, log_success: true, log_failure: true, user_filter: admin_only}
"""


@pytest.fixture
def blog(tmp_path, instrument):
    instrument(FlaskAuditInstrumentor(), Sqlite3AuditInstrumentor())
    database = str(tmp_path / "blog.sqlite")
    init_db(database, {"alice": ("alice-pw", "admin"), "bob": ("bob-pw", "member")})
    return create_app(database)


def _login(app, username: str, password: str):
    client = app.test_client()
    response = client.post("/auth/login", data={"username": username, "password": password})
    return client, response


def _crud(app) -> tuple[dict[str, int], int]:
    """Bob creates, updates and deletes a post; alice (admin) deletes one of bob's. Returns
    (post ids, requests sent)."""
    bob, _ = _login(app, "bob", "bob-pw")
    alice, _ = _login(app, "alice", "alice-pw")
    first = bob.post("/blog/create", data={"title": "one", "body": "b"}).get_json()["id"]
    second = bob.post("/blog/create", data={"title": "two", "body": "b"}).get_json()["id"]
    assert bob.post(f"/blog/{first}/update", data={"title": "one!", "body": "c"}).status_code == 302
    assert bob.post(f"/blog/{first}/delete").status_code == 302
    assert alice.post(f"/blog/{second}/delete").status_code == 302
    return {"first": first, "second": second}, 7


def test_raw_sqlite_crud_is_one_record_per_request_with_its_rows(audit, blog):
    ids, sent = _crud(blog)
    records = from_sink(audit.records())
    one_record_per_request(records, sent)
    created = where(records, audit__action="create_resource", http__route="/blog/create")
    assert len(created) == 2 and all(r.get("audit.category") == "data_modification" for r in created)
    assert created[0].get("audit.changes") == [{"action": "create_resource", "type": "post", "rows": 1,
                                                "fields": ["title", "body", "author_id"]}]  # raw SQL: its columns
    assert created[0].get("db.collection.name") == "post" and created[0].get("http.route") == "/blog/create"
    updated = one(records, audit__action="update_resource")
    assert updated.get("audit.target.type") == "post" and updated.get("audit.target.id") == str(ids["first"])
    deletes = where(records, audit__action="delete_resource")
    assert {(r.get("user.name"), r.get("audit.target.id")) for r in deletes} == {
        ("bob", str(ids["first"])), ("alice", str(ids["second"]))}
    assert all(r.get("ocsf.class_uid") == 6003 and r.get("ocsf.activity_id") == 4 for r in deletes)
    # The failed login (200 with the form again) and the logins are named by the route classification.
    logins = where(records, audit__category="authentication")
    assert sorted(r.get("audit.action") for r in logins) == ["login", "login"]


def test_the_briefs_rule_fires_on_raw_sql_deletions_by_admins_only(tmp_path, monkeypatch, blog):
    for audit in _started(tmp_path, monkeypatch, BRIEF_POLICY):
        ids, _ = _crud(blog)
        deletes = where(from_sink(audit.records()), audit__action="delete_resource")
        by_user = {r.get("user.name"): r.get("audit.rule") for r in deletes}
        assert by_user == {"alice": "audit_configs[0]", "bob": "default"}


def test_a_rest_delete_without_a_database_is_a_deletion_of_its_resource(audit, instrument):
    from fastapi import APIRouter, FastAPI
    from fastapi.testclient import TestClient

    from otel_audit.instrumentation.starlette import StarletteAuditInstrumentor

    instrument(StarletteAuditInstrumentor())
    router = APIRouter(prefix="/api/v1")

    @router.delete("/items/{item_id}", status_code=204)
    def remove(item_id: int) -> None:
        return None

    @router.patch("/items/{item_id}")
    def edit(item_id: int) -> dict:
        return {}

    @router.post("/items")
    def add() -> dict:
        return {}

    app = FastAPI()
    app.include_router(router)
    with TestClient(app) as client:
        assert client.delete("/api/v1/items/7").status_code == 204
        client.patch("/api/v1/items/7", json={})
        client.post("/api/v1/items", json={})
    records = from_sink(audit.records())
    deleted = one(records, audit__action="delete_resource")
    assert (deleted.get("audit.target.type"), deleted.get("audit.target.id")) == ("items", "7")
    assert deleted.get("ocsf.activity_id") == 4 and deleted.get("audit.category") == "data_modification"
    assert one(records, audit__action="update_resource").get("audit.target.id") == "7"
    assert one(records, audit__action="create_resource").get("audit.target.type") == "items"


def test_outside_requests_one_record_per_transaction_and_per_statement_in_autocommit(audit, instrument, tmp_path):
    instrument(Sqlite3AuditInstrumentor())
    conn = sqlite3.connect(tmp_path / "worker.db")
    conn.execute("CREATE TABLE job (id INTEGER PRIMARY KEY, state TEXT)")  # DDL commits by itself
    conn.execute("INSERT INTO job (state) VALUES ('new')")
    conn.execute("INSERT INTO job (state) VALUES ('new')")
    conn.execute("UPDATE job SET state = 'done' WHERE id = 1")
    conn.commit()
    conn.execute("DELETE FROM job WHERE id = 2")
    conn.rollback()
    conn.close()
    autocommit = sqlite3.connect(tmp_path / "worker.db", isolation_level=None)
    autocommit.execute("DELETE FROM job WHERE id = 1")
    autocommit.execute("DELETE FROM job WHERE id = 2")
    autocommit.close()
    records = [r for r in from_sink(audit.records()) if r.get("audit.category") != "audit_system"]
    names = [(r.get("audit.action"), r.get("audit.outcome")) for r in records]
    assert names == [("schema_change", "success"), ("update_resource", "success"), ("delete_resource", "failure"),
                     ("delete_resource", "success"), ("delete_resource", "success")]
    committed = records[1]
    assert committed.get("audit.changes") == [
        {"action": "create_resource", "type": "job", "rows": 2, "statements": 2, "fields": ["state"]},
        {"action": "update_resource", "type": "job", "rows": 1, "fields": ["state"]}]
    assert records[2].get("audit.outcome.reason") == "rolled back"
    assert committed.get("ocsf.class_uid") == 6005  # no API call: Datastore Activity
    assert all(r.get("audit.actor.type") == "system" for r in records)


def test_sqlalchemy_session_outside_a_request_is_one_record_per_commit(audit, instrument, tmp_path):
    from tests.instrumentation.test_sql import Base, Post

    instrument(Sqlite3AuditInstrumentor(), SQLAlchemyAuditInstrumentor())
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'orm.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Post(title="a", body="x"), Post(title="b", body="y")])
        session.commit()
    engine.dispose()
    (record,) = where(from_sink(audit.records()), audit__action="create_resource")
    changes = record.get("audit.changes")
    assert [(c["action"], c["type"], c.get("rows")) for c in changes] == [("create_resource", "post", 1)] * 2
    assert {c["id"] for c in changes} == {"1", "2"} and all("title" in c["fields"] for c in changes)


def test_granularity_statement_per_rule(tmp_path, monkeypatch, instrument):
    policy = """
format: 1
rules:
  - {id: ledger-statements, match: {db_table: ledger}, granularity: statement}
"""
    instrument(Sqlite3AuditInstrumentor())
    for audit in _started(tmp_path, monkeypatch, policy):
        conn = sqlite3.connect(tmp_path / "a.db")
        conn.executescript("CREATE TABLE ledger (v int); CREATE TABLE note (v int);")
        conn.execute("INSERT INTO ledger VALUES (1)")
        conn.execute("INSERT INTO ledger VALUES (2)")
        conn.execute("INSERT INTO note VALUES (3)")
        conn.commit()
        conn.close()
        records = [r for r in from_sink(audit.records()) if r.get("audit.action") == "create_resource"]
        ledger = [r for r in records if r.get("audit.rule") == "ledger-statements"]
        assert len(ledger) == 2 and all(not r.get("audit.changes") for r in ledger)
        # facts come without an event id (most are folded): one recorded alone is given its own
        ids = {r.get("audit.event_id") for r in ledger}
        assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                                                  i or "") for i in ids), ids
        (folded,) = [r for r in records if r.get("audit.rule") != "ledger-statements"]
        assert folded.get("audit.changes") == [{"action": "create_resource", "type": "note", "rows": 1}]


def test_changes_past_the_cap_are_counted_and_flagged(audit, instrument, tmp_path):
    from otel_audit.context import MAX_CHANGES
    from tests.instrumentation.test_sql import Base, Post

    instrument(SQLAlchemyAuditInstrumentor())
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'many.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Post(title=str(i), body="") for i in range(MAX_CHANGES + 20)])
        session.commit()
    (record,) = where(from_sink(audit.records()), audit__action="create_resource")
    assert len(record.get("audit.changes")) == MAX_CHANGES
    assert record.get("audit.changes.count") == MAX_CHANGES + 20 and record.get("audit.changes.truncated") is True


def test_old_action_names_are_aliases_that_validate_reports(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "old.yaml"
    path.write_text("format: 1\naudit_configs:\n  - {action: delete, user_filter: admin_only}\n")
    from otel_audit.policy import load_policy

    policy = load_policy(str(path))
    assert policy.rules[0].rule.match.actions == ("delete_resource",)
    out = subprocess.run([sys.executable, "-m", "otel_audit.cli", "policy", "validate", str(path)],
                         capture_output=True, text=True, check=True).stdout
    assert "note: audit_configs[0].action: action 'delete' is the old name of 'delete_resource'" in out
    assert "old.yaml:3" in out
