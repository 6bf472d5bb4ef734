"""Tables of a database, for ``otel-audit coverage`` of raw-SQL apps (no models to read): kept next
to the DB-API adapter. SQLite files are opened read-only (coverage never creates a database);
PostgreSQL is asked through ``information_schema``. Errors never show the URL's password."""

from __future__ import annotations

import re
import sqlite3
from typing import Any


class DatabaseUnreadable(Exception):
    """The database cannot be opened or listed; the message names it (password masked)."""


def shown(url: str) -> str:
    """``url`` with any password replaced, for messages."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def tables(url: str) -> list[Any]:
    """``AppTable`` (raw SQL) per user table of the database at ``url`` (``sqlite:///path``, a
    plain file path, or ``postgresql://...``)."""
    from otel_audit.coverage import AppTable

    if url.startswith(("postgres://", "postgresql://", "postgresql+")):
        names = _postgres(url)
    else:
        names = _sqlite(url)
    return [AppTable(name, None, False, name) for name in sorted(names)]


def _sqlite(url: str) -> list[str]:
    path = re.sub(r"^sqlite(\+\w+)?:///", "", url)
    if path in ("", ":memory:"):
        raise DatabaseUnreadable(f"--database {url!r}: an in-memory database has no tables to list")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            return [name for (name,) in rows]
    except sqlite3.Error as exc:
        raise DatabaseUnreadable(f"--database {url!r}: cannot read the SQLite file {path!r} "
                                 f"({type(exc).__name__}: {exc})") from None


def _postgres(url: str) -> list[str]:
    try:
        import psycopg
    except ImportError:
        raise DatabaseUnreadable(f"--database {shown(url)}: PostgreSQL needs psycopg (pip install "
                                 "'otel-audit[postgres]')") from None
    dsn = re.sub(r"^postgresql\+\w+://", "postgresql://", url)
    try:
        with psycopg.connect(dsn, connect_timeout=10) as db:
            rows = db.execute("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                              "AND table_schema = ANY(current_schemas(false))").fetchall()
            return [name for (name,) in rows]
    except psycopg.Error as exc:
        password = re.search(r"://[^:/@]*:([^@]*)@", url)
        reason = (str(exc).strip().splitlines() or [""])[0]
        if password and password.group(1):
            reason = reason.replace(password.group(1), "***")
        raise DatabaseUnreadable(f"--database {shown(url)}: cannot list its tables "
                                 f"({type(exc).__name__}: {reason})") from None
