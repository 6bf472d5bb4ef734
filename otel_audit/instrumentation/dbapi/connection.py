"""The audited DB-API connection and cursor (wrapt proxies) that every driver's ``connect`` hands out:
each ``execute``/``executemany`` becomes a fact of the current action; outside a request the
connection's ``commit``/``rollback`` (or autocommit) closes the transaction's record."""


from __future__ import annotations

from typing import Any, Callable

import wrapt

from otel_audit.errors import containment
from otel_audit.instrumentation._sql import never_recorded, parse_statement, record_statement
from otel_audit.context import current_scope
from otel_audit.recording import before_write, end_transaction

_MAX_PARAMETER_ROWS = 10


_SCALARS = frozenset({str, bool, int, float, type(None)})


def plain_value(value: Any) -> Any:
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
        return {str(key): plain_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(item) for item in value]
    return str(value)


class DbFacts:
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


def _record(facts: DbFacts, sql: Any, parameters: Any, cursor: Any, error: BaseException | None) -> None:
    try:
        statement = parse_statement(sql)
        if statement is None:
            return
        _emit(facts, statement, sql, parameters, cursor, error)
    except Exception as exc:  # noqa: BLE001 - never break the query
        containment.record("dbapi record", exc)


def _before(facts: DbFacts, sql: Any) -> None:
    """Before a statement runs: a data-changing one in a request writes the request's intent first."""
    if current_scope() is None:
        return
    statement = parse_statement(sql)
    if statement is not None:
        before_write(statement.category, statement.action, statement.table, statement.operation)


def _record_execute(facts: DbFacts, sql: Any, args: Any, kwargs: Any, cursor: Any,
                    error: BaseException | None) -> None:
    """:func:`_record` for ``execute(sql, *args, **kwargs)``: the parameters are only picked out
    for statements that make an event (not for BEGIN, SAVEPOINT, PRAGMA...)."""
    try:
        statement = parse_statement(sql)
        if statement is None:
            return
        parameters = args[0] if args else kwargs.get("params", kwargs.get("parameters")) if kwargs else None
        _emit(facts, statement, sql, parameters, cursor, error)
    except Exception as exc:  # noqa: BLE001 - never break the query
        containment.record("dbapi record", exc)


def _emit(facts: DbFacts, statement: Any, sql: Any, parameters: Any, cursor: Any, error: BaseException | None) -> None:
    if never_recorded(statement):
        return
    row_count = getattr(cursor, "rowcount", None) if cursor is not None else None
    record_statement(
        statement,
        system=facts.system,
        namespace=facts.namespace,
        query_text=sql if type(sql) is str or isinstance(sql, str) else str(sql),
        parameters=plain_value(parameters),
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


def _executed_script(facts: DbFacts, call: Callable[[], Any], script: Any) -> Any:
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

    def __init__(self, cursor: Any, facts: DbFacts) -> None:
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

    def __init__(self, connection: Any, facts: DbFacts) -> None:
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
