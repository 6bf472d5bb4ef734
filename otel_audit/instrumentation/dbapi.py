"""DB-API adapter for sqlite3 and psycopg (3): every executed statement is a fact of its action.

``sqlite3.Connection`` is a C type that cannot be patched, so (like contrib's dbapi
instrumentation) ``connect`` is wrapped to return a wrapt proxy whose ``cursor()``/``execute()``
hand out proxied cursors. Each ``execute``/``executemany`` is classified from its SQL text
(SELECT -> read_resource, INSERT -> create_resource, UPDATE -> update_resource, DELETE ->
delete_resource, DDL -> schema_change) and folded into the surrounding request's record; outside a
request, the connection's ``commit``/``rollback`` (or autocommit) closes the transaction's record.

When SQLAlchemy drives the same connection its adapter marks it as owned (:func:`mark_owned`), and
this adapter stays silent on it: one statement, one record.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any, Callable, Collection

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_audit.errors import containment
from otel_audit.instrumentation._sql import classify, record_statement
from otel_audit.context import current_scope
from otel_audit.recording import before_write, end_transaction

_MAX_PARAMETER_ROWS = 10


_SCALARS = frozenset({str, bool, int, float, type(None)})


def _plain(value: Any) -> Any:
    """Parameters as log-attribute-safe values (exported only at ``full`` level, redacted first)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is tuple or kind is list:
        for item in value:
            if type(item) not in _SCALARS:
                break
        else:
            return list(value)  # the usual row of plain values: what the general case makes of it
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return str(value)


class _DbFacts:
    __slots__ = ("system", "namespace", "owned", "origin", "connection")

    def __init__(self, system: str, namespace: str | None, connection: Any = None) -> None:
        self.system = system
        self.namespace = namespace
        self.owned = False  # True when SQLAlchemy records this connection's statements
        self.origin = f"dbapi.{system}"
        self.connection = connection  # the driver's connection, asked whether a transaction is open

    def in_transaction(self) -> bool | None:
        """Whether the driver has a transaction open (False: the statement committed by itself)."""
        connection = self.connection
        if connection is None:
            return None
        try:
            if self.system == "sqlite":
                return bool(connection.in_transaction)
            return int(connection.info.transaction_status) != 0  # psycopg: IDLE is 0
        except Exception:  # noqa: BLE001 - a closed connection
            return None


def _record(facts: _DbFacts, sql: Any, parameters: Any, cursor: Any, error: BaseException | None) -> None:
    try:
        statement = classify(sql)
        if statement is None:
            return
        _emit(facts, statement, sql, parameters, cursor, error)
    except Exception as exc:  # noqa: BLE001 - never break the query
        containment.record("dbapi record", exc)


def _before(facts: _DbFacts, sql: Any) -> None:
    """Before a statement runs: a data-changing one in a request writes the request's intent first."""
    if current_scope() is None:
        return
    statement = classify(sql)
    if statement is not None:
        before_write(statement.category, statement.action, statement.table, statement.operation)


def _record_execute(facts: _DbFacts, sql: Any, args: Any, kwargs: Any, cursor: Any,
                    error: BaseException | None) -> None:
    """:func:`_record` for ``execute(sql, *args, **kwargs)``: the parameters are only picked out
    for statements that make an event (not for BEGIN, SAVEPOINT, PRAGMA...)."""
    try:
        statement = classify(sql)
        if statement is None:
            return
        parameters = args[0] if args else kwargs.get("params", kwargs.get("parameters")) if kwargs else None
        _emit(facts, statement, sql, parameters, cursor, error)
    except Exception as exc:  # noqa: BLE001 - never break the query
        containment.record("dbapi record", exc)


def _emit(facts: _DbFacts, statement: Any, sql: Any, parameters: Any, cursor: Any, error: BaseException | None) -> None:
    row_count = getattr(cursor, "rowcount", None) if cursor is not None else None
    record_statement(
        statement,
        system=facts.system,
        namespace=facts.namespace,
        query_text=sql if type(sql) is str or isinstance(sql, str) else str(sql),
        parameters=_plain(parameters),
        row_count=row_count if isinstance(row_count, int) else None,
        origin=facts.origin,
        error=error,
        in_transaction=facts.in_transaction(),
    )


def _script_statements(script: str) -> list[str]:
    """The statements of an SQL script, split where sqlite3 itself would (``complete_statement``),
    so a ``;`` inside a string literal does not split."""
    import sqlite3

    statements, current = [], ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \t\r\n;"):
                statements.append(current.strip())
            current = ""
    if current.strip(" \t\r\n;"):
        statements.append(current.rstrip(";").strip())
    return statements


def _executed_script(facts: _DbFacts, call: Callable[[], Any], script: Any) -> Any:
    """sqlite3's ``executescript``: one record per statement (DDL at start-up included)."""
    if facts.owned or not isinstance(script, str):
        return call()
    try:
        result = call()
    except Exception as error:
        _record(facts, script, None, None, error)
        raise
    try:
        statements = _script_statements(script)
    except Exception as exc:  # noqa: BLE001
        containment.record("dbapi script split", exc)
        statements = [script]
    for statement in statements:
        _record(facts, statement, None, None, None)
    return result


def _many(rows: Any) -> Any:
    if isinstance(rows, (list, tuple)):
        return list(rows[:_MAX_PARAMETER_ROWS])
    return None  # an iterator: recording it would consume the app's data


#: wrapt 2's C proxy without the Python-level ``__new__`` of its ``ObjectProxy`` (a cursor proxy
#: is made per statement); ``__iter__`` is added back below. wrapt 1: its ``ObjectProxy`` (all C).
_Proxy: Any = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


class AuditedCursor(_Proxy):
    """A driver cursor whose ``execute``/``executemany`` are recorded.

    The driver call is made inline (no per-call closures); a failure is recorded with its error
    type and re-raised unchanged.
    """

    def __init__(self, cursor: Any, facts: _DbFacts) -> None:
        super().__init__(cursor)
        self._self_facts = facts

    def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        wrapped = self.__wrapped__
        facts = self._self_facts
        if facts.owned:
            result = wrapped.execute(sql, *args, **kwargs)
        else:
            _before(facts, sql)
            try:
                result = wrapped.execute(sql, *args, **kwargs)
            except Exception as error:
                _record_execute(facts, sql, args, kwargs, None, error)
                raise
            _record_execute(facts, sql, args, kwargs, wrapped, None)
        return self if result is wrapped else result

    def executemany(self, sql: Any, rows: Any, *args: Any, **kwargs: Any) -> Any:
        wrapped = self.__wrapped__
        facts = self._self_facts
        if facts.owned:
            result = wrapped.executemany(sql, rows, *args, **kwargs)
        else:
            _before(facts, sql)
            try:
                result = wrapped.executemany(sql, rows, *args, **kwargs)
            except Exception as error:
                _record(facts, sql, _many(rows), None, error)
                raise
            _record(facts, sql, _many(rows), wrapped, None)
        return self if result is wrapped else result

    def executescript(self, script: Any) -> Any:
        wrapped = self.__wrapped__
        result = _executed_script(self._self_facts, lambda: wrapped.executescript(script), script)
        return self if result is wrapped else result

    def __enter__(self) -> Any:
        entered = self.__wrapped__.__enter__()
        return self if entered is self.__wrapped__ else entered

    def __iter__(self) -> Any:
        return iter(self.__wrapped__)


class AuditedConnection(wrapt.ObjectProxy):
    """A driver connection handing out audited cursors (plain ones once SQLAlchemy owns it: its
    adapter records those statements, this one would stay silent on them anyway)."""

    def __init__(self, connection: Any, facts: _DbFacts) -> None:
        super().__init__(connection)
        self._self_facts = facts

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        cursor = self.__wrapped__.cursor(*args, **kwargs)
        facts = self._self_facts
        return cursor if facts.owned else AuditedCursor(cursor, facts)

    def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        facts = self._self_facts
        if facts.owned:
            return self.__wrapped__.execute(sql, *args, **kwargs)
        _before(facts, sql)
        try:
            cursor = self.__wrapped__.execute(sql, *args, **kwargs)
        except Exception as error:
            _record_execute(facts, sql, args, kwargs, None, error)
            raise
        _record_execute(facts, sql, args, kwargs, cursor, None)
        return AuditedCursor(cursor, facts)

    def executemany(self, sql: Any, rows: Any, *args: Any, **kwargs: Any) -> Any:
        facts = self._self_facts
        if facts.owned:
            return self.__wrapped__.executemany(sql, rows, *args, **kwargs)
        _before(facts, sql)
        try:
            cursor = self.__wrapped__.executemany(sql, rows, *args, **kwargs)
        except Exception as error:
            _record(facts, sql, _many(rows), None, error)
            raise
        _record(facts, sql, _many(rows), cursor, None)
        return AuditedCursor(cursor, facts)

    def executescript(self, script: Any) -> Any:
        cursor = _executed_script(self._self_facts, lambda: self.__wrapped__.executescript(script), script)
        return cursor if self._self_facts.owned else AuditedCursor(cursor, self._self_facts)

    def commit(self) -> Any:
        result = self.__wrapped__.commit()
        _ended(True)
        return result

    def rollback(self) -> Any:
        result = self.__wrapped__.rollback()
        _ended(False)
        return result

    def __enter__(self) -> Any:
        entered = self.__wrapped__.__enter__()
        return self if entered is self.__wrapped__ else entered

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        result = self.__wrapped__.__exit__(exc_type, exc, tb)  # sqlite3: commit, or roll back on error
        _ended(exc_type is None)
        return result


def _ended(committed: bool) -> None:
    """Outside a request, a commit or rollback closes the transaction's record."""
    try:
        end_transaction(committed)
    except Exception as exc:  # noqa: BLE001 - AuditUnavailable included: the commit already happened
        containment.record("dbapi transaction end", exc)


def mark_owned(dbapi_connection: Any) -> bool:
    """Silence this adapter on a connection another adapter (SQLAlchemy) records. Looks through
    async adaptors (SQLAlchemy's adapted connection -> aiosqlite -> sqlite3) and other proxies
    (contrib's ``TracedConnectionProxy`` around ours: ``__wrapped__``) for our proxy. By its real
    type: a wrapt proxy around ours passes ``isinstance`` but keeps ``_self_`` attributes its own."""
    frontier = [dbapi_connection]
    for _ in range(4):
        next_frontier = []
        for candidate in frontier:
            if issubclass(type(candidate), AuditedConnection):
                candidate._self_facts.owned = True
                return True
            for attr in ("__wrapped__", "driver_connection", "_connection", "_conn", "dbapi_connection"):
                try:
                    inner = getattr(candidate, attr, None)
                except Exception:  # noqa: BLE001 - properties that raise when closed
                    inner = None
                if inner is not None and inner is not candidate:
                    next_frontier.append(inner)
        frontier = next_frontier
    return False


# ---------------------------------------------------------------------------------------------
# sqlite3


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
        return AuditedConnection(connection, _DbFacts("sqlite", _sqlite_namespace(args, kwargs), connection))
    except Exception as exc:  # noqa: BLE001
        containment.record("sqlite3 connect", exc)
        return connection


class Sqlite3AuditInstrumentor(BaseInstrumentor):
    """Audits statements run through ``sqlite3.connect`` connections (also Django's sqlite backend)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    _originals: dict[Any, Any] = {}

    def _instrument(self, **kwargs: Any) -> None:
        # ``sqlite3.connect`` and ``sqlite3.dbapi2.connect`` (what Django and SQLAlchemy call) are
        # two names for one function: both get the same wrapper, both get the original back.
        original = sqlite3.dbapi2.connect
        wrapper = wrapt.FunctionWrapper(original, _sqlite_connect)
        for module in (sqlite3, sqlite3.dbapi2):
            self._originals[module] = module.connect
            module.connect = wrapper

    def _uninstrument(self, **kwargs: Any) -> None:
        for module, original in self._originals.items():
            module.connect = original
        self._originals.clear()


# ---------------------------------------------------------------------------------------------
# psycopg 3


def _psycopg_connect(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    connection = wrapped(*args, **kwargs)
    try:
        return AuditedConnection(connection, _DbFacts("postgresql", connection.info.dbname, connection))
    except Exception as exc:  # noqa: BLE001
        containment.record("psycopg connect", exc)
        return connection


class PsycopgAuditInstrumentor(BaseInstrumentor):
    """Audits statements run through ``psycopg.connect`` connections (sync; SQLAlchemy's async
    psycopg driver is covered by the SQLAlchemy adapter)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("psycopg >= 3.1",)

    _original: Any = None

    def _instrument(self, **kwargs: Any) -> None:
        try:
            import psycopg
        except ImportError:  # not installed: nothing to audit
            return
        self._original = psycopg.connect
        psycopg.connect = wrapt.FunctionWrapper(self._original, _psycopg_connect)

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._original is None:
            return
        import psycopg

        psycopg.connect = self._original
        self._original = None
