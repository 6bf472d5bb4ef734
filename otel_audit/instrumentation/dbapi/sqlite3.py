"""sqlite3: ``sqlite3.connect`` (also what Django's and SQLAlchemy's sqlite backends call) returns an
audited connection."""

from __future__ import annotations

import os
import sqlite3
from typing import Any, Collection

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_audit.errors import containment
from otel_audit.instrumentation._patch import Patch
from otel_audit.instrumentation.dbapi.connection import AuditedConnection, DbFacts


def _sqlite_namespace(args: Any, kwargs: Any) -> str | None:
    database = args[0] if args else kwargs.get("database")
    if database is None:
        return None
    if type(database) is str:  # apps reconnect to the same few files (Django: once per request)
        namespace = _namespaces.get(database)
        if namespace is None:
            if len(_namespaces) >= 256:
                _namespaces.clear()
            namespace = _namespaces[database] = _namespace_of(database)
        return namespace
    return _namespace_of(os.fsdecode(database) if isinstance(database, (bytes, os.PathLike)) else str(database))


def _namespace_of(database: str) -> str:
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return "main"
    return os.path.basename(database.removeprefix("file:").split("?", 1)[0]) or "main"


_namespaces: dict[str, str] = {}


def _sqlite_connect(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    connection = wrapped(*args, **kwargs)
    try:
        return AuditedConnection(connection, DbFacts("sqlite", _sqlite_namespace(args, kwargs), connection))
    except Exception as exc:  # noqa: BLE001
        containment.record("sqlite3 connect", exc)
        return connection


class Sqlite3AuditInstrumentor(BaseInstrumentor):
    """Audits statements run through ``sqlite3.connect`` connections (also Django's sqlite backend)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    # ``sqlite3.connect`` and ``sqlite3.dbapi2.connect`` (what Django and SQLAlchemy call) are two
    # names for one function: both get the same wrapper, both get their own original back.
    _patch = Patch(sqlite3.dbapi2, "connect", _sqlite_connect, also=(sqlite3,))

    def _instrument(self, **kwargs: Any) -> None:
        self._patch.install()

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patch.remove()
