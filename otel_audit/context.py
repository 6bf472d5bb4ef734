"""The action a user is taking: one per HTTP request (or per database transaction outside one).

The unit of audit is the action, not the layer that saw it (docs/ARCHITECTURE.md). Adapters hand
the facts they see to the current :class:`RequestScope` — the HTTP exchange opens it, DB and ORM
adapters add :class:`Change` entries, auth adapters note their signal — and the scope is closed
once, when the response is known (:mod:`otel_audit.action` turns it into one event). Outside a
request, the first database change opens a transaction scope that the connection's commit or
rollback closes. Carried by contextvars: async-safe, no thread-locals.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any, Callable

from otel_audit.event import Actor, AuditEvent, Change, HttpInfo, Source
from otel_audit.ids import new_event_id

#: At most this many entries in one action's ``audit.changes``; past it, changes are only counted
#: (``audit.changes.count``) and the record says ``audit.changes.truncated=true``. Statement-level
#: entries of the same table and action merge (rows add up), so the cap is rarely reached.
MAX_CHANGES = 100


@dataclass(slots=True)
class RequestScope:
    """One action in progress: who (actor), from where (source), the HTTP exchange if any, and the
    facts adapters handed in. ``event_id`` is fixed at the start, so an intent frame written at the
    first change and the final record share it (docs/delivery.md)."""

    actor: Actor = field(default_factory=Actor)
    source: Source = field(default_factory=Source)
    http: HttpInfo | None = None
    event_id: str = field(default_factory=new_event_id)
    changes: list[Change] = field(default_factory=list)
    dropped: int = 0  # changes past MAX_CHANGES: counted, not listed
    signal: AuditEvent | None = None  # an auth adapter's login/logout/login_failed for this action
    intent: bool = False  # an intent frame was written for this action
    kind: str = "request"  # request | transaction
    holds: int = 0  # ORM operations in progress (a transaction scope stays open while > 0)

    def add_change(self, change: Change) -> None:
        """Fold ``change`` in: an ORM-level entry takes over the statement-level entry of the same
        table and operation (it knows the id and the fields); statement-level entries of the same
        table, action and operation merge, their rows added up (a CREATE and a DROP stay two)."""
        changes = self.changes
        if change.orm:
            if change.rows is None:
                change.rows = 1  # an ORM change is one row
            for index in range(len(changes) - 1, -1, -1):
                entry = changes[index]
                if not entry.orm and entry.table == change.table and entry.operation == change.operation:
                    rows = entry.rows if entry.rows is not None and entry.rows > 0 else 1
                    if rows <= 1:
                        del changes[index]
                    else:
                        entry.rows = rows - 1
                    break
        elif change.id is None:
            for entry in reversed(changes):
                if not entry.orm and entry.table == change.table and entry.action == change.action \
                        and entry.operation == change.operation and entry.error == change.error:
                    entry.rows = _add_rows(entry.rows, change.rows)
                    entry.statements += 1
                    if change.fields and change.fields != entry.fields:
                        entry.fields = tuple(dict.fromkeys((entry.fields or ()) + change.fields))
                    return
        if len(changes) < MAX_CHANGES:
            changes.append(change)
        else:
            self.dropped += 1

    def discard(self, table: str | None, operation: str) -> None:
        """Drop one row of the last statement-level entry of ``table`` and ``operation``."""
        changes = self.changes
        for index in range(len(changes) - 1, -1, -1):
            entry = changes[index]
            if not entry.orm and entry.table == table and entry.operation == operation:
                if entry.rows is not None and entry.rows > 1:
                    entry.rows -= 1
                else:
                    del changes[index]
                return


def _add_rows(a: int | None, b: int | None) -> int | None:
    if a is None or a < 0:
        return b if b is not None and b >= 0 else None
    if b is None or b < 0:
        return a
    return a + b


_current: ContextVar[RequestScope | None] = ContextVar("otel_audit_request", default=None)


#: The current action's scope, or None outside one (``ContextVar.get`` itself: no wrapper call on
#: the hot path, where every DB statement asks).
current_scope: Callable[[], RequestScope | None] = _current.get

#: Open ``scope`` for the current context; returns the token for :func:`exit_scope`.
enter_scope: Callable[[RequestScope], Token] = _current.set


def exit_scope(token: Token) -> None:
    try:
        _current.reset(token)
    except ValueError:  # token from another context (e.g. ASGI task switch): just clear
        _current.set(None)


def request_scope() -> RequestScope | None:
    """The current scope if it is an HTTP request's (transaction scopes are not requests)."""
    scope = _current.get()
    return scope if scope is not None and scope.kind == "request" else None


def clear_scope() -> None:
    _current.set(None)


def change_entry(change: Change, full: bool) -> dict[str, Any]:
    """One ``audit.changes`` entry as a plain map (``values`` only at ``full`` level)."""
    entry: dict[str, Any] = {"action": change.action}
    if change.type:
        entry["type"] = change.type
    if change.table and change.table != change.type:
        entry["table"] = change.table
    if change.id is not None:
        entry["id"] = change.id
    if change.fields:
        entry["fields"] = list(change.fields)
    if change.rows is not None and change.rows >= 0:
        entry["rows"] = change.rows
    if change.statements > 1:
        entry["statements"] = change.statements
    if change.error:
        entry["error"] = change.error
    if full and change.values:
        entry["values"] = change.values
    return entry
