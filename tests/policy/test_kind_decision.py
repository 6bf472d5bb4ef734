"""``CompiledPolicy.kind_decision``: a DB adapter folds a statement into its action without building
its event when the rules decide statements of its kind (category, action, operation, outcome) from
that alone. Where it answers, it must be exactly what :meth:`decide` says of every such statement,
whatever its table, actor or route; where a rule asks more, it must not answer."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from otel_audit.event import Actor, AuditEvent, DbInfo, HttpInfo, Source
from otel_audit.policy import load_policy
from otel_audit.policy.compiled import UNDECIDED

KINDS = [
    ("data_modification", "create_resource", "INSERT"),
    ("data_modification", "update_resource", "UPDATE"),
    ("data_modification", "delete_resource", "DELETE"),
    ("data_access", "read_resource", "SELECT"),
    ("configuration", "schema_change", "CREATE"),
    ("account_management", "update_user", "UPDATE"),
]
TABLES = ["notes", "sessions", "accounts"]
ACTORS = [Actor(), Actor(id="7", roles=("admin",), type="user"), Actor(id="8", roles=("ops",), type="user")]
ROUTES = [None, "/admin/notes", "/api/items/{id}"]

POLICIES = {
    "default": None,
    "all-requests": "pack:all-requests",
    "table none": "{format: 1, id: t, rules: [{match: {db_table: sessions}, level: none}]}",
    "insert table none": "{format: 1, id: t, rules: [{match: {db_operation: INSERT, db_table: sessions}, level: none}]}",
    "role first": "{format: 1, id: t, rules: [{match: {category: data_modification, actor_role: [ops]}, level: full}]}",
    "path rule": "{format: 1, id: t, rules: [{match: {path: /admin/**}, level: request}]}",
    "kind rules": "{format: 1, id: t, rules: [{match: {db_operation: DELETE}, level: full, log_failure: false}, "
                  "{match: {category: configuration}, level: none}]}",
    "statement granularity": "{format: 1, id: t, rules: [{match: {db_operation: UPDATE}, granularity: statement}]}",
    "defaults none": "{format: 1, id: t, defaults: {level: none}, rules: [{match: {category: data_modification}}]}",
}


def _fact(kind: tuple[str, str, str], outcome: str, table: str, actor: Actor, route: str | None) -> AuditEvent:
    category, action, operation = kind
    return AuditEvent(category=category, action=action, outcome=outcome, actor=actor, source=Source(),
                      http=HttpInfo(method="POST", route=route, path=route) if route else None,
                      db=DbInfo(system="sqlite", collection=table, operation=operation), origin="sqlite3")


@pytest.mark.parametrize("name", POLICIES)
def test_where_the_kind_decides_it_is_what_decide_says_of_every_such_statement(name: str) -> None:
    policy = load_policy(POLICIES[name], environ={})
    answered = 0
    for kind, outcome in itertools.product(KINDS, ("success", "failure")):
        by_kind = policy.kind_decision(*kind, outcome)
        decisions = [policy.decide(_fact(kind, outcome, table, actor, route))
                     for table, actor, route in itertools.product(TABLES, ACTORS, ROUTES)]
        if by_kind is UNDECIDED:
            continue
        answered += 1
        assert all(decision == by_kind for decision in decisions), (name, kind, outcome, by_kind)
    # Rules that apply to every kind and ask for a table or path leave every kind to decide().
    assert bool(answered) is (name not in ("table none", "path rule")), (name, answered)


@pytest.mark.parametrize("name, kind", [
    ("table none", KINDS[0]), ("role first", KINDS[1]), ("path rule", KINDS[2]),
])
def test_a_rule_that_asks_more_than_the_kind_leaves_it_undecided(name: str, kind: tuple[str, str, str]) -> None:
    assert load_policy(POLICIES[name], environ={}).kind_decision(*kind, "success") is UNDECIDED


def test_statements_folded_by_their_kind_and_those_a_table_rule_drops(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a real sqlite3 connection: the update is folded by its kind, without its event being
    built; the inserts need theirs (a rule asks for the table of inserts), and the one into sessions,
    which that rule sets to none, is left out of the transaction's record."""
    from otel_audit.instrumentation.dbapi import Sqlite3AuditInstrumentor, connection
    from tests.instrumentation.conftest import _started

    # The module the running code calls into (other tests may have imported a fresh copy of it).
    sql_module = connection.record_statement.__globals__
    built: list[str] = []
    real_sql_event = sql_module["sql_event"]

    def counted(statement, **kwargs):  # noqa: ANN001, ANN003
        built.append(statement.table)
        return real_sql_event(statement, **kwargs)

    monkeypatch.setitem(sql_module, "sql_event", counted)
    started = _started(tmp_path, monkeypatch, POLICIES["insert table none"])
    captured = next(started)
    instrumentor = Sqlite3AuditInstrumentor()
    instrumentor.instrument(skip_dep_check=True)
    try:
        db = sqlite3.connect(tmp_path / "app.db")
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        db.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY, data TEXT)")
        db.commit()
        built.clear()
        db.execute("INSERT INTO notes (body) VALUES (?)", ("hello",))
        db.execute("INSERT INTO sessions (data) VALUES (?)", ("opaque",))
        db.execute("UPDATE notes SET body = ? WHERE id = 1", ("edited",))
        db.commit()
        db.close()
        created = captured.find("data_modification")
        assert len(created) == 1
        assert [(change.table, change.operation) for change in created[0].changes] == [("notes", "INSERT"),
                                                                                      ("notes", "UPDATE")]
        assert built == ["notes", "sessions"], "only the inserts' events were built"
    finally:
        instrumentor.uninstrument()
        next(started, None)
