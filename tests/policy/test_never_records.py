"""``CompiledPolicy.never_records``: the DB adapters skip building a statement's event when the
policy decides ``none`` for every statement of its kind, and only then. A wrong "quiet" would
lose a recorded read; a wrong "not quiet" only costs time - so each case that must record is
checked through a real sqlite3 connection too."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from otel_audit.policy import load_policy

READ = ("data_access", "read_resource", "SELECT")
INSERT = ("data_modification", "create_resource", "INSERT")


def policy(rules: str = "[]", defaults: str = "{}", extends: str = "[]") -> object:
    """A policy of ``rules``; ``extends="default"``: the default's rules (db-reads-off) follow them."""
    base = "" if extends == "default" else f", extends: {extends}"
    return load_policy(f"{{format: 1, id: t, rules: {rules}, defaults: {defaults}{base}}}", environ={})


def test_the_default_policy_never_records_reads_and_always_may_record_writes() -> None:
    default = load_policy(None, environ={})
    assert default.never_records(*READ) is True  # builtin.db-reads-off
    assert default.never_records(*INSERT) is False
    assert default.never_records("configuration", "schema_change", "CREATE") is False
    assert default.never_records("audit_system", "stop", None) is False  # always recorded


@pytest.mark.parametrize("rule", [
    "{match: {category: data_access, db_table: accounts}, level: metadata}",  # one table's reads
    "{match: {category: data_access, actor_role: [auditor]}, level: full}",  # one role's reads
    "{match: {category: data_access, outcome: failure}}",  # failed reads (level: the default's)
    "{match: {db_operation: SELECT}, granularity: statement}",  # every read its own record
], ids=["table", "role", "outcome", "statement"])
def test_a_rule_that_may_record_some_reads_first_makes_reads_not_quiet(rule: str) -> None:
    assert policy(f"[{rule}]", extends="default").never_records(*READ) is False


def test_a_conditional_none_rule_does_not_silence_what_it_may_not_match() -> None:
    # "none for the ops team's reads" says nothing of anyone else's: the default (metadata) applies
    assert policy("[{match: {category: data_access, actor_role: [ops]}, level: none}]").never_records(*READ) is False
    # an unconditional none for reads is quiet, whatever follows it
    assert policy("[{match: {category: data_access}, level: none}, {match: {db_table: x}, level: full}]"
                  ).never_records(*READ) is True


def test_with_defaults_level_none_only_what_a_rule_selects_is_not_quiet() -> None:
    quiet_default = policy("[{match: {category: data_modification}}]", "{level: none}")
    assert quiet_default.never_records(*READ) is True
    assert quiet_default.never_records(*INSERT) is False


def test_reads_a_rule_records_still_arrive_through_sqlite3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_audit.instrumentation.dbapi import Sqlite3AuditInstrumentor
    from tests.instrumentation.conftest import _started

    rules = "[{id: account-reads, match: {category: data_access, db_table: accounts}, level: metadata, granularity: statement}]"
    started = _started(tmp_path, monkeypatch, f"{{format: 1, id: reads, rules: {rules}}}")
    captured = next(started)
    instrumentor = Sqlite3AuditInstrumentor()
    instrumentor.instrument(skip_dep_check=True)
    try:
        db = sqlite3.connect(tmp_path / "app.db")
        db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        db.execute("SELECT name FROM accounts WHERE id = ?", (1,)).fetchall()
        db.execute("SELECT body FROM notes WHERE id = ?", (1,)).fetchall()
        db.close()
        reads = captured.find("data_access", "read_resource")
        assert [read.db.collection for read in reads] == ["accounts"]
    finally:
        instrumentor.uninstrument()
        next(started, None)
