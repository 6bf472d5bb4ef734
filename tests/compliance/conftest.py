"""Fixtures of the compliance tests: the Flask notes example (examples/flask_app) on its own SQLite
file per test, loaded under a module name of its own (the FastAPI example also has an ``app.py``)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from otel_audit.compliance import missing_details
from tests.support.procs import REPO

FLASK_EXAMPLE = REPO / "examples" / "flask_app"
POLICIES = Path(__file__).resolve().parent / "policies"


def _load_flask_example() -> Any:
    name = "otel_audit_compliance_flask_example"
    if name in sys.modules:
        return sys.modules[name]
    saved = os.environ.get("NOTES_DB")
    os.environ["NOTES_DB"] = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"notes-compliance-{os.getpid()}.db")
    try:
        spec = importlib.util.spec_from_file_location(name, FLASK_EXAMPLE / "app.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        if saved is None:
            os.environ.pop("NOTES_DB", None)
        else:
            os.environ["NOTES_DB"] = saved
    return module


flask_example = _load_flask_example()  # imported before audit_trail starts, so 'auto' instruments Flask


@pytest.fixture
def notes_app(tmp_path):
    return flask_example.create_app(str(tmp_path / "notes.db"))


@pytest.fixture
def client(notes_app):
    return notes_app.test_client()


def login(client, username: str, password: str):
    return client.post("/login", data={"username": username, "password": password})


def assert_pci_details(record: dict[str, Any]) -> dict[str, Any]:
    """The record carries every PCI DSS 10.2.2 detail (as the pack's traceability data defines them)."""
    __tracebackhide__ = True
    missing = missing_details(record, "pci-dss")
    assert not missing, f"{record.get('event_name')} lacks 10.2.2 details {missing}: {record.get('attributes')}"
    return record


def tags(record: dict[str, Any]) -> list[str]:
    return list((record.get("attributes") or {}).get("audit.tags") or [])


def add_maintenance_route(app) -> None:
    """An admin-only view running DDL through the app's own connection. The example has none; an
    app that has one (archiving, reindexing) gets it recorded."""
    import sqlite3

    from flask import current_app, g, jsonify

    @app.post("/admin/maintenance/archive")
    def archive():
        if g.user is None or g.user["role"] != "admin":
            return jsonify(error="forbidden"), 403
        conn = sqlite3.connect(current_app.config["DATABASE"])
        try:
            conn.execute("CREATE TABLE notes_archive AS SELECT * FROM notes")
            conn.execute("DROP TABLE notes_archive")
        finally:
            conn.close()
        return jsonify(archived=True)


#: What an ``audit.changes`` entry may hold below level full: names and counts, never values.
CHANGE_KEYS = {"action", "type", "table", "id", "fields", "rows", "statements", "error"}


def changes(record: dict[str, Any], **wanted: Any) -> list[dict[str, Any]]:
    """The record's ``audit.changes`` entries (the rows and statements its action touched) that
    have every ``wanted`` key with that value."""
    entries = list((record.get("attributes") or {}).get("audit.changes") or [])
    return [entry for entry in entries if all(entry.get(key) == value for key, value in wanted.items())]


def assert_changes_hold_no_values(record: dict[str, Any]) -> None:
    """Below level full an action's changes say what was touched (table, id, field names, rows),
    never what it held."""
    __tracebackhide__ = True
    for entry in changes(record):
        assert set(entry) <= CHANGE_KEYS, f"{record.get('event_name')}: change entry with values {entry}"
