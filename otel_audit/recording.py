"""Where adapters' facts become records: one record per action (docs/ARCHITECTURE.md).

* :func:`record_change` — a DB or ORM adapter saw a statement or a changed row. The policy decides
  on the fact alone (reads are off by default; ``granularity: statement`` makes it a record of its
  own); otherwise it is folded into the current action: the HTTP request's scope, or outside a
  request a transaction scope that :func:`end_transaction` (the connection's commit or rollback)
  closes — at once in autocommit.
* :func:`note_signal` — an auth adapter's login / logout / failed login: part of the request's
  record, or a record of its own outside a request.
* :func:`name_action` — the app says what the action is (the manual API).
* :func:`close_request` — the HTTP exchange knows the response: the one record of the request.

Every function contains its own failures except :class:`~otel_audit.errors.AuditUnavailable`
(fail-closed), like :func:`otel_audit.runtime.record_event`.
"""

from __future__ import annotations

from typing import Any, Callable

from otel_audit.action import describe_change, primary_change, resolve
from otel_audit.context import RequestScope, clear_scope, current_scope, enter_scope
from otel_audit.errors import AuditUnavailable, containment
from otel_audit.event import Actor, AuditEvent, Change, Source
from otel_audit.identity import IdentityRules
from otel_audit.ids import new_event_id
from otel_audit.policy.compiled import UNDECIDED
from otel_audit.runtime import get_runtime, record_event

_WRITES = frozenset({"data_modification", "account_management", "authorization", "configuration"})


def record_change(fact: AuditEvent | Callable[[], AuditEvent], change: Change,
                  in_transaction: bool | None = True) -> None:
    """Fold one statement or ORM change into its action (or record it alone, per policy).

    ``fact`` is the change as an event of its own (what ``granularity: statement`` records and
    what the policy decides on), or a function that builds it: when the policy decides facts of
    the change's kind from the kind alone and folds them (``CompiledPolicy.kind_decision``), none is
    built. ``in_transaction`` is False for a statement that committed by itself (autocommit), None
    when unknown (an ORM change: its statements said). A fact may come without an event id
    (``""``): most are folded, and only one recorded alone needs its own.
    """
    try:
        runtime = get_runtime()
        if runtime is None:
            return
        policy = runtime.policy
        refined = identity_rules(policy).refine(change)  # a user row: an account or privilege action
        decision: Any = UNDECIDED
        if not refined and not isinstance(fact, AuditEvent):
            by_kind = getattr(policy, "kind_decision", None)
            if by_kind is not None:
                decision = by_kind(change.category, change.action, change.operation,
                                   "failure" if change.error is not None else "success")
        if decision is UNDECIDED:
            if not isinstance(fact, AuditEvent):
                fact = fact()
            if refined:
                fact.category, fact.action = change.category, change.action
                if change.attributes:
                    fact.attributes.update(change.attributes)
            decision = policy.decide(fact)
        if decision is None or decision.level == "none":
            return  # not audited at all (reads, by default): not part of the action either
        scope = current_scope()
        if decision.granularity == "statement" or scope is None:
            if not isinstance(fact, AuditEvent):
                fact = fact()
            if decision.granularity == "statement":
                if not fact.event_id:
                    fact.event_id = new_event_id()
                runtime.record(fact)
                return
            scope = RequestScope(actor=_process_actor(fact.actor), kind="transaction")
            enter_scope(scope)
        scope.add_change(change)
        if scope.kind == "request":
            if not scope.intent and change.category in _WRITES and change.error is None:
                _note_intent(runtime, scope)
        elif in_transaction is False and scope.holds == 0:
            _close_transaction(scope, committed=True)
    except AuditUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - never break the statement
        containment.record("change", exc)


def before_write(category: str, action: str, table: str | None, operation: str | None) -> None:
    """A DB adapter is about to run a data-changing statement: the request's intent frame is
    written first (once per request), so a process killed after the commit still leaves evidence,
    and under fail-closed a spool that cannot take it stops the statement (``AuditUnavailable``)
    before anything changed."""
    scope = current_scope()
    if scope is None or scope.intent or scope.kind != "request" or category not in _WRITES:
        return
    try:
        runtime = get_runtime()
        if runtime is not None:
            _note_intent(runtime, scope, Change(category, action, table=table, operation=operation))
    except AuditUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - never break the statement
        containment.record("intent", exc)


_rules_for: tuple[Any, Any] = (None, None)  # (policy, its IdentityRules)


def identity_rules(policy: Any) -> IdentityRules:
    """The policy's account and privilege rules (``actors.user_tables`` ...), compiled once."""
    global _rules_for
    cached = _rules_for
    if cached[0] is policy:
        return cached[1]
    rules = IdentityRules.from_policy(policy)
    _rules_for = (policy, rules)
    return rules


def _note_intent(runtime: Any, scope: RequestScope, change: Change | None = None) -> None:
    """The first change of a request: an intent frame, so a process killed before the response
    still leaves evidence (docs/delivery.md). Written once per request."""
    scope.intent = True
    note = getattr(runtime, "note_intent", None)
    if note is None:
        return
    http = scope.http
    actor = scope.actor
    if change is None:
        change = scope.changes[-1] if scope.changes else None
    attributes = {
        "audit.category": change.category if change else "data_modification",
        "audit.action": change.action if change else "update_resource",
        "enduser.id": actor.id,
        "user.name": actor.name,
        "client.address": scope.source.address,
        "http.request.method": http.method if http else None,
        "http.route": http.route if http else None,
        "url.path": http.path if http else None,
        "db.collection.name": change.table if change else None,
        "db.operation.name": change.operation if change else None,
    }
    note(scope.event_id, {key: value for key, value in attributes.items() if value is not None})


def discard_change(table: str | None, operation: str) -> None:
    """An ORM says the last statement on ``table`` was bookkeeping (a session row, an admin log
    entry, a save that changed nothing): not part of the action."""
    scope = current_scope()
    if scope is not None:
        scope.discard(table, operation)


def note_signal(signal: AuditEvent) -> None:
    """An auth adapter's event: the request's record takes it (one record, not two); outside a
    request it is recorded on its own."""
    scope = current_scope()
    if scope is None or scope.kind != "request":
        record_event(signal)
        return
    if signal.action == "login" and signal.actor.id:
        scope.actor = signal.actor
    if scope.signal is None or signal.action != "login_failed":  # a later success tells more
        scope.signal = signal


def name_action(event: AuditEvent) -> None:
    """The app named what it is doing (the manual API): inside a request, the first such event is
    the request's action (same record, same event id); outside one, or a second in the same
    request, it is a record of its own."""
    scope = current_scope()
    if scope is None or scope.kind != "request" or scope.signal is not None:
        record_event(event)
        return
    event.event_id = scope.event_id
    scope.signal = event


def close_request(scope: RequestScope, event: AuditEvent) -> bool:
    """The request's one record: ``event`` (the exchange's facts) with the action's changes and
    signal, named by :func:`otel_audit.action.resolve`, through the pipeline. True if emitted."""
    event.event_id = scope.event_id
    event.changes = scope.changes or None
    event.changes_dropped = scope.dropped
    event.signal = scope.signal
    signal_actor = scope.signal.actor if scope.signal is not None else None
    if signal_actor is not None and not event.actor.id and (signal_actor.id or signal_actor.name):
        event.actor = signal_actor  # a failed login names who was tried, a logout who left
    runtime = get_runtime()
    if runtime is not None:
        resolve(event, getattr(runtime.policy, "classifier", None))
    emitted = record_event(event)
    if scope.intent and event.decision is None and runtime is not None:
        resolve_intent = getattr(runtime, "resolve_intent", None)
        if resolve_intent is not None:  # decided not to record: the intent needs no record either
            resolve_intent(scope.event_id)
    return emitted


# ---------------------------------------------------------------------------------------------
# Outside requests: one record per transaction


def _process_actor(actor: Actor) -> Actor:
    """Outside a request the actor is this process (``pid:N``, as on lifecycle records), unless an
    adapter knew better."""
    if actor.id or actor.type not in (None, "system"):
        return actor
    import os

    return Actor(id=f"pid:{os.getpid()}", type="system")


def end_transaction(committed: bool) -> None:
    """A connection committed or rolled back: the transaction scope (if any) becomes its record."""
    scope = current_scope()
    if scope is None or scope.kind != "transaction" or scope.holds:
        return
    try:
        _close_transaction(scope, committed)
    except AuditUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001
        containment.record("transaction end", exc)


def hold() -> None:
    """An ORM operation outside a request begins (Django ``pre_save``): its statements and its
    row-level change are one record, even in autocommit."""
    scope = current_scope()
    if scope is None:
        scope = RequestScope(actor=_process_actor(Actor(type="system")), kind="transaction")
        enter_scope(scope)
    if scope.kind == "transaction":
        scope.holds += 1


def release(in_transaction: bool) -> None:
    """The ORM operation ended; outside a transaction (autocommit) its record is written now."""
    scope = current_scope()
    if scope is None or scope.kind != "transaction":
        return
    scope.holds = max(0, scope.holds - 1)
    if scope.holds == 0 and not in_transaction:
        end_transaction(committed=True)


def _close_transaction(scope: RequestScope, committed: bool) -> None:
    clear_scope()
    change = primary_change(scope.changes)
    if change is None:
        return
    event = AuditEvent(
        category=change.category,
        action=change.action,
        outcome="success" if committed else "failure",
        outcome_reason=None if committed else "rolled back",
        actor=scope.actor,
        source=Source(),
        changes=scope.changes,
        changes_dropped=scope.dropped,
        origin=change.origin or "db",
        event_id=scope.event_id,
    )
    describe_change(event, change)
    record_event(event)
