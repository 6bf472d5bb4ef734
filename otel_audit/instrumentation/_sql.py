"""SQL statement facts shared by the SQLAlchemy and DB-API adapters (no framework imports here).

Turns statement text into (category, action, operation, table) and builds the ``AuditEvent`` with
the actor/source/route of the surrounding request, so a DELETE issued by a view is attributed to
the user who asked for it. Classification is cached per statement text: ORMs repeat the same few
statements, and the cache keeps the per-statement cost to one dict lookup.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from otel_audit.event import AuditEvent, Change, DbInfo, Source
from otel_audit.instrumentation._request import scope_and_actor
from otel_audit.recording import record_change
from otel_audit.runtime import get_runtime

#: Leading verb -> (category, action), in the one vocabulary every layer uses (catalogue.py).
#: Statements whose verb is not here (BEGIN, COMMIT, SET, PRAGMA, SAVEPOINT, SHOW, ...) are
#: session housekeeping and produce no fact.
VERB_ACTIONS: dict[str, tuple[str, str]] = {
    "SELECT": ("data_access", "read_resource"),
    "INSERT": ("data_modification", "create_resource"),
    "UPDATE": ("data_modification", "update_resource"),
    "DELETE": ("data_modification", "delete_resource"),
    "MERGE": ("data_modification", "update_resource"),
    "UPSERT": ("data_modification", "update_resource"),
    "REPLACE": ("data_modification", "update_resource"),
    "TRUNCATE": ("data_modification", "delete_resource"),
    "COPY": ("data_modification", "create_resource"),
    "CREATE": ("configuration", "schema_change"),
    "ALTER": ("configuration", "schema_change"),
    "DROP": ("configuration", "schema_change"),
    "RENAME": ("configuration", "schema_change"),
    "COMMENT": ("configuration", "schema_change"),
    "GRANT": ("authorization", "grant_role"),
    "REVOKE": ("authorization", "revoke_role"),
}

_IDENT = r'(?:"(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[\w$]+)'
_QUALIFIED = rf"({_IDENT}(?:\s*\.\s*{_IDENT})*)"
_COMMENTS = re.compile(r"(--[^\n]*\n?)|(/\*.*?\*/)", re.S)
_VERB = re.compile(r"\s*\(?\s*([A-Za-z]+)")
_CTE_MAIN_VERB = re.compile(r"\)\s*(SELECT|INSERT|UPDATE|DELETE|MERGE)\b", re.I)
_DDL_OBJECT = re.compile(
    rf"\b(?:TABLE|INDEX|VIEW|SEQUENCE|SCHEMA|TRIGGER|TYPE|FUNCTION|DATABASE)\s+"
    rf"(?:IF\s+(?:NOT\s+)?EXISTS\s+|CONCURRENTLY\s+|ONLY\s+)*{_QUALIFIED}",
    re.I,
)
_TABLE_AFTER = {
    "SELECT": re.compile(rf"\bFROM\s+(?:ONLY\s+)?{_QUALIFIED}", re.I),
    "INSERT": re.compile(rf"\bINTO\s+{_QUALIFIED}", re.I),
    "REPLACE": re.compile(rf"\bINTO\s+{_QUALIFIED}", re.I),
    "MERGE": re.compile(rf"\bINTO\s+{_QUALIFIED}", re.I),
    "UPSERT": re.compile(rf"\bINTO\s+{_QUALIFIED}", re.I),
    "UPDATE": re.compile(rf"\bUPDATE\s+(?:OR\s+\w+\s+)?(?:ONLY\s+)?{_QUALIFIED}", re.I),
    "DELETE": re.compile(rf"\bFROM\s+(?:ONLY\s+)?{_QUALIFIED}", re.I),
    "TRUNCATE": re.compile(rf"\bTRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?{_QUALIFIED}", re.I),
    "COPY": re.compile(rf"\bCOPY\s+{_QUALIFIED}", re.I),
}


class Statement(NamedTuple):
    category: str
    action: str
    operation: str  # upper-case verb: SELECT, INSERT, CREATE, ...
    table: str | None


_CLOSING = {'"': '"', "`": "`", "[": "]"}


def _unquote(name: str) -> str:
    """``schema."Table"`` / ```a.b``` / ``[dbo].[t]`` -> the dotted name as written, quotes removed; a dot
    inside any quoted part belongs to the name (```client.address``` is one column)."""
    parts: list[str] = []
    current: list[str] = []
    closing = None
    index = 0
    while index < len(name):
        char = name[index]
        if closing is not None:
            if char == closing:
                if closing == '"' and name[index + 1:index + 2] == '"':  # "" inside "...": a literal quote
                    current.append('"')
                    index += 2
                    continue
                closing = None
            else:
                current.append(char)
        elif char in _CLOSING:
            closing = _CLOSING[char]
        elif char == ".":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current).strip())
    return ".".join(parts)


def parse_statement_uncached(sql: str) -> Statement | None:
    """Classify one statement; None for statements that are not auditable (transaction control...)."""
    text = _COMMENTS.sub(" ", sql)
    match = _VERB.match(text)
    if match is None:
        return None
    verb = match.group(1).upper()
    if verb == "WITH":
        main = _CTE_MAIN_VERB.search(text)
        if main is None:
            return None
        verb = main.group(1).upper()
        text = text[main.start(1) :]
    entry = VERB_ACTIONS.get(verb)
    if entry is None:
        return None
    table = None
    pattern = _TABLE_AFTER.get(verb)
    found = pattern.search(text) if pattern is not None else None
    if found is None and entry[0] == "configuration":
        found = _DDL_OBJECT.search(text)
    if found is not None:
        table = _unquote(found.group(1))
    return Statement(entry[0], entry[1], verb, table)


_CACHE: dict[str, Statement | None] = {}
_CACHE_LIMIT = 2048
_MISSING = object()


def parse_statement(sql: Any) -> Statement | None:
    """:func:`parse_statement_uncached` with a bounded cache keyed by statement text."""
    if type(sql) is str:
        cached = _CACHE.get(sql, _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
    elif not isinstance(sql, str):
        try:
            sql = sql.decode() if isinstance(sql, (bytes, bytearray)) else str(sql)
        except Exception:  # noqa: BLE001 - psycopg Composed objects etc.
            return None
    try:
        return _CACHE[sql]
    except KeyError:
        pass
    result = parse_statement_uncached(sql)
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[sql] = result
    return result


_INSERT_COLUMNS = re.compile(rf"\bINTO\s+{_QUALIFIED}\s*\(([^)]*)\)", re.I | re.S)
_SET_CLAUSE = re.compile(r"\bSET\s+(.*?)(?:\bWHERE\b|\bRETURNING\b|\bFROM\b|$)", re.I | re.S)
_ASSIGNMENT = re.compile(rf"^\s*(?:{_IDENT}\s*\.\s*)?({_IDENT})\s*=\s*(.*?)\s*$", re.S)
_LITERALS = {"true": True, "false": False, "null": None}
_COLUMNS: dict[str, tuple[tuple[str, Any], ...]] = {}
_NO_VALUE = object()


def columns_of(sql: str, operation: str) -> tuple[tuple[str, Any], ...]:
    """The columns an INSERT or UPDATE writes, with the literal an UPDATE sets them to when it is a
    number, boolean, NULL or plain string (a parameter: no value). Cached per statement text."""
    found = _COLUMNS.get(sql)
    if found is not None:
        return found
    columns: list[tuple[str, Any]] = []
    text = _COMMENTS.sub(" ", sql)
    if operation == "INSERT":
        match = _INSERT_COLUMNS.search(text)
        if match:
            columns = [(_unquote(name.strip()), _NO_VALUE) for name in match.group(2).split(",") if name.strip()]
    elif operation == "UPDATE":
        match = _SET_CLAUSE.search(text)
        if match:
            for part in match.group(1).split(","):
                assignment = _ASSIGNMENT.match(part)
                if assignment:
                    columns.append((_unquote(assignment.group(1)), _literal(assignment.group(2))))
    result = tuple(columns)
    if len(_COLUMNS) >= _CACHE_LIMIT:
        _COLUMNS.clear()
    _COLUMNS[sql] = result
    return result


_WRITTEN: dict[str, tuple[tuple[str, ...] | None, tuple[tuple[str, Any], ...]]] = {}


def written_fields(sql: str, operation: str) -> tuple[tuple[str, ...] | None, tuple[tuple[str, Any], ...]]:
    """(the column names an INSERT or UPDATE writes or None, the literal values it sets), cached per
    statement text like :func:`columns_of`."""
    found = _WRITTEN.get(sql)
    if found is not None:
        return found
    columns = columns_of(sql, operation)
    found = (tuple(name for name, _ in columns) or None,
             tuple((name, value) for name, value in columns if value is not _NO_VALUE))
    if len(_WRITTEN) >= _CACHE_LIMIT:
        _WRITTEN.clear()
    _WRITTEN[sql] = found
    return found


def _literal(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in _LITERALS:
        return _LITERALS[lowered]
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == "'" and "'" not in stripped[1:-1]:
        return stripped[1:-1]  # a plain string literal (values leave at full level only, redacted)
    try:
        return int(lowered)
    except ValueError:
        return _NO_VALUE


def never_recorded(statement: Statement) -> bool:
    """Whether the policy decides ``none`` for every statement of this kind (reads, by default), so
    the adapter can skip building its event: nothing would record it or fold it into its action."""
    runtime = get_runtime()
    if runtime is None:
        return True
    check = getattr(runtime.policy, "never_records", None)
    return check is not None and check(statement.category, statement.action, statement.operation)


def sql_event(
    statement: Statement,
    *,
    system: str | None,
    namespace: str | None,
    query_text: str,
    parameters: Any,
    row_count: int | None,
    origin: str,
    error: BaseException | None = None,
    scope_actor: tuple[Any, Any] | None = None,
) -> AuditEvent:
    """The event for one executed statement, attributed to the current request's actor
    (``scope_actor``: :func:`scope_and_actor`'s answer, when the caller already asked)."""
    scope, actor = scope_actor if scope_actor is not None else scope_and_actor()
    event = AuditEvent(
        category=statement.category,
        action=statement.action,
        outcome="failure" if error is not None else "success",
        outcome_reason="statement failed" if error is not None else None,
        actor=actor,
        source=scope.source if scope is not None else Source(),
        http=scope.http if scope is not None else None,
        db=DbInfo(
            system=system,
            namespace=namespace,
            collection=statement.table,
            operation=statement.operation,
            query_text=query_text,
            parameters=parameters,
            row_count=row_count if row_count is not None and row_count >= 0 else None,
        ),
        origin=origin,
        event_id="",  # a fact folded into its action needs none; record_change names one if recorded alone
    )
    if error is not None:
        event.error_type = error_type_of(error)
    return event


def error_type_of(error: BaseException) -> str:
    """``error.type``: the exception's qualified class name (builtins unprefixed)."""
    return f"{type(error).__module__}.{type(error).__qualname__}".removeprefix("builtins.")


def record_statement(
    statement: Statement,
    *,
    system: str | None,
    namespace: str | None,
    query_text: str,
    parameters: Any,
    row_count: int | None,
    origin: str,
    error: BaseException | None = None,
    in_transaction: bool | None = True,
) -> None:
    """One executed statement, handed to its action (:func:`otel_audit.recording.record_change`).

    Its event is built only if the policy needs it: most statements are folded into their action
    by their kind alone (``CompiledPolicy.kind_decision``)."""
    # Asked now, not only when the event is built: it refreshes the actor after a login in the
    # view and fills in the route, which the request's intent frame (first write) names.
    scope_actor = scope_and_actor()
    fields = values = None
    if statement.operation in ("INSERT", "UPDATE") and isinstance(query_text, str):
        fields, literals = written_fields(query_text, statement.operation)
        if literals:  # a new dict per change: values are the record's, never the cache's
            values = {name: {"new": value} for name, value in literals}
    change = Change(
        category=statement.category,
        action=statement.action,
        table=statement.table,
        type=statement.table,
        operation=statement.operation,
        fields=fields,
        values=values,
        rows=row_count if row_count is not None and row_count >= 0 else None,
        system=system,
        namespace=namespace,
        error=error_type_of(error) if error is not None else None,
        origin=origin,
    )

    def fact() -> AuditEvent:
        return sql_event(statement, system=system, namespace=namespace, query_text=query_text, parameters=parameters,
                         row_count=row_count, origin=origin, error=error, scope_actor=scope_actor)

    record_change(fact, change, in_transaction)
