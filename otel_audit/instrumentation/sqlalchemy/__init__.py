"""SQLAlchemy adapter: statement facts from every Engine, row facts from every ORM flush, each
folded into its action (the request's record; outside a request, the transaction's, closed by the
Engine's ``commit`` / ``rollback``).

* Engine (class-level ``after_cursor_execute`` / ``handle_error``): one fact per statement —
  SELECT -> ``read_resource``, INSERT -> ``create_resource``, UPDATE/MERGE -> ``update_resource``,
  DELETE -> ``delete_resource``, DDL -> ``configuration``/``schema_change`` — with table, operation,
  row count, statement text and parameters (the last two only in ``granularity: statement``
  records at ``request``/``full`` level, redacted). Async engines run these same events on their
  sync engine underneath.
* ORM (class-level ``Session.before_flush`` / ``after_flush``): one fact per created, updated or
  deleted entity with the names of the changed attributes (values at ``full`` only); it takes over
  the statement's entry for the same row.
  Changes are captured before the flush (history is gone afterwards) and recorded after it, when
  new rows have their primary keys; a flush that fails records nothing.
* Pool ``connect``: marks the driver connection as owned so the DB-API adapter does not record
  the same statement a second time.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any, Collection

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm.base import PASSIVE_NO_INITIALIZE, instance_state
from sqlalchemy.pool import Pool

from otel_audit.errors import containment
from otel_audit.event import AuditEvent, Change, DbInfo, Source, Target
from otel_audit.instrumentation._request import scope_and_actor
from otel_audit.instrumentation._sql import never_recorded, parse_statement, record_statement
from otel_audit.instrumentation.dbapi import mark_owned, plain_value
from otel_audit.context import current_scope
from otel_audit.recording import before_write, end_transaction, record_change

_PENDING_KEY = "_otel_audit_pending"
_MAX_PARAMETER_ROWS = 10
_ACTIONS = {"create": ("create_resource", "INSERT"), "update": ("update_resource", "UPDATE"),
            "delete": ("delete_resource", "DELETE")}


def _database(conn: Any) -> tuple[str | None, str | None]:
    dialect = conn.dialect
    url = conn.engine.url
    cached = _databases.get(id(url))
    if cached is not None and cached[0] is url and cached[1] is dialect:
        return cached[2]
    system = dialect.name
    database = url.database
    if database and system == "sqlite":
        database = "main" if database == ":memory:" else os.path.basename(database)
    if len(_databases) >= _CACHE_LIMIT:
        _databases.clear()
    _databases[id(url)] = (url, dialect, (system, database))
    return system, database


_CACHE_LIMIT = 256
#: id(engine URL) -> (URL, dialect, (system, database)): one answer per engine, not per statement.
#: Keyed by id with the objects kept and compared, so a reused id can never answer wrongly.
_databases: dict[int, tuple[Any, Any, tuple[str | None, str | None]]] = {}


def _statement(conn: Any, statement: str, parameters: Any, executemany: bool, row_count: int | None,
               error: BaseException | None) -> None:
    classified = parse_statement(statement)
    if classified is None or never_recorded(classified):
        return
    system, database = _database(conn)
    if executemany and isinstance(parameters, (list, tuple)):
        parameters = list(parameters[:_MAX_PARAMETER_ROWS])
    autocommit = getattr(conn, "_is_autocommit_isolation", None)
    record_statement(
        classified,
        system=system,
        namespace=database,
        query_text=statement,
        parameters=plain_value(parameters),
        row_count=row_count,
        origin="sqlalchemy",
        error=error,
        in_transaction=not (autocommit is not None and autocommit()),
    )


def _after_cursor_execute(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                          executemany: bool) -> None:
    try:
        row_count = getattr(cursor, "rowcount", None)
        _statement(conn, statement, parameters, executemany, row_count if isinstance(row_count, int) else None, None)
    except Exception as exc:  # noqa: BLE001 - never break the query
        containment.record("sqlalchemy statement", exc)


def _before_cursor_execute(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                           executemany: bool) -> None:
    """A data-changing statement in a request writes the request's intent first (fail-closed:
    ``AuditUnavailable`` stops it before anything changed)."""
    if current_scope() is None:
        return
    try:
        classified = parse_statement(statement)
    except Exception as exc:  # noqa: BLE001
        containment.record("sqlalchemy before statement", exc)
        return
    if classified is not None:
        before_write(classified.category, classified.action, classified.table, classified.operation)


def _handle_error(context: Any) -> None:
    try:
        if context.statement is None or context.connection is None:
            return
        executemany = bool(context.execution_context is not None and context.execution_context.executemany)
        _statement(context.connection, context.statement, context.parameters, executemany, None,
                   context.original_exception)
    except Exception as exc:  # noqa: BLE001
        containment.record("sqlalchemy error", exc)


def _pool_connect(dbapi_connection: Any, connection_record: Any) -> None:
    try:
        mark_owned(dbapi_connection)
    except Exception as exc:  # noqa: BLE001
        containment.record("sqlalchemy pool connect", exc)


# ---------------------------------------------------------------------------------------------
# ORM


def _changes(state: Any, new: bool) -> tuple[list[str], dict[str, Any]]:
    """(changed attribute names, {name: {"old", "new"}}) from attribute history; columns get values."""
    fields: list[str] = []
    values: dict[str, Any] = {}
    get_history = state.get_history
    for key, is_column in _attributes_of(state):
        history = get_history(key, PASSIVE_NO_INITIALIZE)  # what ``state.attrs[key].history`` reads
        changed = bool(history.added) if new else history.has_changes()
        if not changed:
            continue
        fields.append(key)
        if is_column:
            change = {"new": plain_value(history.added[0]) if history.added else None}
            if history.deleted:  # unknown when the attribute was expired and never loaded
                change["old"] = plain_value(history.deleted[0])
            values[key] = change
    return fields, values


#: id(ClassManager) -> (manager, its size, ((attribute key, is a column attribute), ...)) in
#: ``state.attrs`` order; the size check notices attributes configured later (backrefs).
_attribute_keys: dict[int, tuple[Any, int, tuple[tuple[str, bool], ...]]] = {}


def _attributes_of(state: Any) -> tuple[tuple[str, bool], ...]:
    manager = state.manager
    cached = _attribute_keys.get(id(manager))
    if cached is not None and cached[0] is manager and cached[1] == len(manager):
        return cached[2]
    column_keys = set(state.mapper.column_attrs.keys())
    keys = tuple((key, key in column_keys) for key in state.attrs.keys())
    if len(_attribute_keys) >= _CACHE_LIMIT:
        _attribute_keys.clear()
    _attribute_keys[id(manager)] = (manager, len(manager), keys)
    return keys


def _before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    try:
        pending = session.info.setdefault(_PENDING_KEY, [])
        for obj in session.new:
            fields, values = _changes(instance_state(obj), new=True)
            pending.append(("create", obj, fields, values))
        for obj in session.dirty:
            state = instance_state(obj)
            fields, values = _changes(state, new=False)
            if fields:
                pending.append(("update", obj, fields, values))
        for obj in session.deleted:
            pending.append(("delete", obj, [], None))
    except Exception as exc:  # noqa: BLE001
        containment.record("sqlalchemy before_flush", exc)


def _orm_fact(scope: Any, actor: Any, change: Change, entity: str) -> AuditEvent:
    """One flushed row's change as an event of its own: built only when the policy needs it
    (``recording.record_change``; most are folded into their action by their kind alone)."""
    return AuditEvent(
        category="data_modification",
        action=change.action,
        outcome="success",
        actor=actor,
        source=scope.source if scope is not None else Source(),
        http=scope.http if scope is not None else None,
        target=Target(type=change.table, id=change.id),
        db=DbInfo(collection=change.table, operation=change.operation),
        changed_fields=change.fields,
        changes=[change],
        attributes={"audit.orm.entity": entity},
        origin="sqlalchemy.orm",
        event_id="",  # named by record_change only if recorded alone
    )


def _after_flush(session: Session, flush_context: Any) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if not pending:
        return
    try:
        scope, actor = scope_and_actor()
        for kind, obj, fields, values in pending:
            state = instance_state(obj)
            mapper = state.mapper
            table, entity = _entity_of(mapper)
            identity = state.identity or mapper.primary_key_from_instance(obj)
            action, operation = _ACTIONS[kind]
            target = Target(type=table, id=_identity_text(identity))
            change = Change(category="data_modification", action=action, table=table, type=table, id=target.id,
                            operation=operation, fields=tuple(fields) if fields else None, values=values or None,
                            attributes={"audit.orm.entity": entity}, origin="sqlalchemy.orm", orm=True)
            record_change(partial(_orm_fact, scope, actor, change, entity), change, None)
    except Exception as exc:  # noqa: BLE001
        containment.record("sqlalchemy after_flush", exc)


def _identity_text(identity: Any) -> str | None:
    """The primary key as ``audit.target.id``: parts joined by ``,``; None while any part is unknown."""
    if not identity or None in identity:
        return None
    if len(identity) == 1:
        return str(identity[0])
    return ",".join(str(part) for part in identity)


_entities: dict[int, tuple[Any, Any, str | None, str]] = {}


def _entity_of(mapper: Any) -> tuple[str | None, str]:
    """(table name, ``module.QualName`` of the mapped class), once per mapper."""
    selectable = mapper.persist_selectable
    cached = _entities.get(id(mapper))
    if cached is None or cached[0] is not mapper or cached[1] is not selectable:
        cls = mapper.class_
        cached = (mapper, selectable, getattr(selectable, "name", None), f"{cls.__module__}.{cls.__qualname__}")
        if len(_entities) >= _CACHE_LIMIT:
            _entities.clear()
        _entities[id(mapper)] = cached
    return cached[2], cached[3]


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def _transaction_end(committed: bool) -> None:
    try:
        end_transaction(committed)
    except Exception as exc:  # noqa: BLE001 - AuditUnavailable included: not the commit's failure
        containment.record("sqlalchemy transaction end", exc)


def _commit(conn: Any) -> None:
    _transaction_end(True)


def _rollback(conn: Any) -> None:
    _transaction_end(False)


_LISTENERS = (
    (Engine, "before_cursor_execute", _before_cursor_execute),
    (Engine, "after_cursor_execute", _after_cursor_execute),
    (Engine, "commit", _commit),
    (Engine, "rollback", _rollback),
    (Engine, "handle_error", _handle_error),
    (Pool, "connect", _pool_connect),
    (Session, "before_flush", _before_flush),
    (Session, "after_flush", _after_flush),
    (Session, "after_soft_rollback", lambda session, previous_transaction: _after_rollback(session)),
)


class SQLAlchemyAuditInstrumentor(BaseInstrumentor):
    """Audits statements of every Engine (sync and async) and entity changes of every ORM Session."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("sqlalchemy >= 2.0",)

    def _instrument(self, **kwargs: Any) -> None:
        for target, name, listener in _LISTENERS:
            if not event.contains(target, name, listener):
                event.listen(target, name, listener)

    def _uninstrument(self, **kwargs: Any) -> None:
        for target, name, listener in _LISTENERS:
            if event.contains(target, name, listener):
                event.remove(target, name, listener)

