"""A recorded trail (the embedded sink's JSON lines, or OTLP JSON from the Collector's file
exporter) loaded into an in-memory SQLite table ``logs``: one row per record, one column per
attribute name, so the SQLite conversion of each rule runs on it as it is."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from otel_audit.delivery.canonical import read_exported


@dataclass(frozen=True)
class TrailRecord:
    """What a rule can match on: the event name, the time and the attributes."""

    event_name: str
    time_unix_nano: int
    attributes: dict[str, Any]


def read_trail(path: str) -> list[TrailRecord]:
    """Records of a sink or OTLP JSON file; ``ValueError`` names the file and line it cannot read."""
    return [TrailRecord(r.event_name or "", int(r.time_unix_nano or 0), dict(r.attributes)) for r in read_exported(path)]


def from_dicts(records: Iterable[dict[str, Any]]) -> list[TrailRecord]:
    """Records in the sink's shape (``audit_trail.all_records``, ``read_sink``)."""
    return [TrailRecord(r.get("event_name") or "", int(r.get("time_unix_nano") or 0), dict(r.get("attributes") or {}))
            for r in records]


def _iso(unix_nano: int) -> str:
    return datetime.fromtimestamp(unix_nano / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, bool):
        return int(value)
    return json.dumps(value, sort_keys=True, default=str)  # lists and maps: their JSON text


def load(records: list[TrailRecord], fields: Iterable[str] = ()) -> sqlite3.Connection:
    """A connection holding ``logs``: ``timestamp`` (UTC, ms), ``event_name``, every attribute of
    the records and every field in ``fields`` (NULL where a record lacks it). Rows are in
    trail order; ``rowid`` is the 1-based position."""
    columns: dict[str, str] = {}  # lower-cased (SQLite's column names are case-blind) -> name
    for name in ["event_name", *fields, *(k for r in records for k in r.attributes)]:
        columns.setdefault(name.lower(), name)
    columns.pop("timestamp", None)
    names = list(columns.values())
    # The class, not ``sqlite3.connect``: an app's test suite under the sqlite3 adapter must not audit
    # the evaluation of its own trail (its rows would become the next transaction's changes).
    db = sqlite3.Connection(":memory:")
    quoted = ", ".join(f"`{n}`" for n in names)
    db.execute(f"CREATE TABLE logs (timestamp TEXT, {quoted})")
    placeholders = ", ".join("?" for _ in range(len(names) + 1))
    db.executemany(
        f"INSERT INTO logs (timestamp, {quoted}) VALUES ({placeholders})",
        [[_iso(r.time_unix_nano), *(_cell(r.event_name if n == "event_name" else r.attributes.get(n)) for n in names)]
         for r in records],
    )
    return db
