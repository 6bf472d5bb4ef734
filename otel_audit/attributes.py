"""AuditEvent -> OpenTelemetry log attributes, by detail level.

Semantic-convention names where they exist, ``audit.*`` for the rest. What each level adds:

* ``metadata``: who / what / when / where / outcome, no payloads.
* ``request``:  + query string, request headers, request body, SQL text (all redacted later).
* ``full``:     + response headers and body, changed values (``values`` of each ``audit.changes``
  entry), bound SQL parameters (redacted later).

docs/attributes.md is the reference table for every key written here.
"""

from __future__ import annotations

from typing import Any

from otel_audit.catalogue import ocsf_for
from otel_audit.context import change_entry
from otel_audit.event import Actor, AuditEvent, Target

LEVELS = ("none", "metadata", "request", "full")
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}


def _put(attrs: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "" and value != ():
        attrs[key] = value


def _headers(attrs: dict[str, Any], prefix: str, headers: dict[str, str] | None) -> None:
    # Semconv: http.request.header.<lower-case name> as a list of values.
    for name, value in (headers or {}).items():
        attrs[f"{prefix}{name.lower()}"] = [value] if isinstance(value, str) else list(value)


#: Actions outside account_management whose target is an account (account_management's all are).
ACCOUNT_ACTIONS = frozenset({"grant_role", "revoke_role"})


def target_is_actor(actor: Actor, target: Target) -> bool | None:
    """Whether the account acted on is the actor's own, so a rule can match a self-grant without
    comparing two fields (which Datadog and Loki cannot). None when either side names nothing:
    two missing ids are not the same account. Adapters name the account by its id (Django's pk,
    an ORM key) or, where the route addresses users by login name (``/admin/users/<username>``),
    by that name: the actor's name is compared with both."""
    actor_id, actor_name = _text(actor.id), _text(actor.name)
    target_id, target_name = _text(target.id), _text(target.name)
    if (actor_id is None and actor_name is None) or (target_id is None and target_name is None):
        return None
    if actor_id is not None and target_id == actor_id:
        return True
    return actor_name is not None and actor_name in (target_id, target_name)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)  # 0 is an id; None and "" are none


def event_attributes(event: AuditEvent, level: str) -> dict[str, Any]:
    """The attributes of ``event`` that ``level`` lets out (before redaction).

    Optional facts are written only when present (not None, "" or ``()``); the check is inline
    rather than a helper call per key because every audit record passes here.
    """
    attrs: dict[str, Any] = {
        "audit.event_id": event.event_id,
        "audit.category": event.category,
        "audit.action": event.action,
        "audit.outcome": event.outcome,
        "audit.level": level,
        "audit.origin": event.origin,
    }
    if (value := event.outcome_reason) or (value is not None and value != "" and value != ()):
        attrs["audit.outcome.reason"] = value
    actor = event.actor
    if (value := actor.id) or (value is not None and value != "" and value != ()):
        attrs["enduser.id"] = value
    if (value := actor.name) or (value is not None and value != "" and value != ()):
        attrs["user.name"] = value
    if actor.roles:
        attrs["user.roles"] = list(actor.roles)
    if (value := actor.type) or (value is not None and value != "" and value != ()):
        attrs["audit.actor.type"] = value
    if (value := actor.session_id) or (value is not None and value != "" and value != ()):
        attrs["session.id"] = value
    if (value := actor.source) or (value is not None and value != "" and value != ()):
        attrs["audit.actor.source"] = value
    if actor.verified is not None:
        attrs["audit.actor.verified"] = actor.verified
    source = event.source
    if (value := source.address) or (value is not None and value != "" and value != ()):
        attrs["client.address"] = value
    if (value := source.port) or (value is not None and value != "" and value != ()):
        attrs["client.port"] = value
    if (value := source.user_agent) or (value is not None and value != "" and value != ()):
        attrs["user_agent.original"] = value
    if event.target is not None:
        if (value := event.target.type) or (value is not None and value != "" and value != ()):
            attrs["audit.target.type"] = value
        if (value := event.target.id) or (value is not None and value != "" and value != ()):
            attrs["audit.target.id"] = value
        if (value := event.target.name) or (value is not None and value != "" and value != ()):
            attrs["audit.target.name"] = value
        if event.category == "account_management" or event.action in ACCOUNT_ACTIONS:
            if (own := target_is_actor(actor, event.target)) is not None:
                attrs["audit.target.is_actor"] = own
    http = event.http
    if http is not None:
        if (value := http.method) or (value is not None and value != "" and value != ()):
            attrs["http.request.method"] = value
        if (value := http.route) or (value is not None and value != "" and value != ()):
            attrs["http.route"] = value
        if (value := http.path) or (value is not None and value != "" and value != ()):
            attrs["url.path"] = value
        if (value := http.scheme) or (value is not None and value != "" and value != ()):
            attrs["url.scheme"] = value
        if (value := http.host) or (value is not None and value != "" and value != ()):
            attrs["server.address"] = value
        if (value := http.status_code) or (value is not None and value != "" and value != ()):
            attrs["http.response.status_code"] = value
    db = event.db
    if db is not None:
        if (value := db.system) or (value is not None and value != "" and value != ()):
            attrs["db.system.name"] = value
        if (value := db.namespace) or (value is not None and value != "" and value != ()):
            attrs["db.namespace"] = value
        if (value := db.collection) or (value is not None and value != "" and value != ()):
            attrs["db.collection.name"] = value
        if (value := db.operation) or (value is not None and value != "" and value != ()):
            attrs["db.operation.name"] = value
        if (value := db.row_count) or (value is not None and value != "" and value != ()):
            attrs["audit.db.rows_affected"] = value
    if (value := event.error_type) or (value is not None and value != "" and value != ()):
        attrs["error.type"] = value
    if event.changed_fields:
        attrs["audit.changes.fields"] = list(event.changed_fields)
    changes = event.changes
    if changes:
        full = LEVEL_RANK.get(level, 1) >= 3
        attrs["audit.changes"] = [change_entry(change, full) for change in changes]
        if event.changes_dropped:
            attrs["audit.changes.count"] = len(changes) + event.changes_dropped
            attrs["audit.changes.truncated"] = True
    method = http.method if http is not None else None
    class_uid, activity_id = ocsf_for(event.category, event.action, method)
    attrs["ocsf.class_uid"] = class_uid
    attrs["ocsf.category_uid"] = class_uid // 1000
    attrs["ocsf.activity_id"] = activity_id
    attrs["ocsf.type_uid"] = class_uid * 100 + activity_id
    for key, value in event.attributes.items():
        if value is not None:
            attrs[key] = value

    rank = LEVEL_RANK.get(level, 1)
    if rank >= 2:  # request
        if http is not None:
            _put(attrs, "url.query", http.query)
            _headers(attrs, "http.request.header.", http.request_headers)
            _put(attrs, "audit.request.body", http.request_body)
        if db is not None:
            _put(attrs, "db.query.text", db.query_text)
    if rank >= 3:  # full
        if http is not None:
            _headers(attrs, "http.response.header.", http.response_headers)
            _put(attrs, "audit.response.body", http.response_body)
        if db is not None:
            _put(attrs, "db.query.parameters", db.parameters)
    return attrs


def event_message(event: AuditEvent) -> str:
    """A one-line human summary used as the log body: who did what to what, and how it ended."""
    who = event.actor.name or event.actor.id or "anonymous"
    what = event.action.replace("_", " ")
    target = ""
    if event.target is not None and (event.target.type or event.target.id):
        target = f" {event.target.type or 'resource'}"
        if event.target.id:
            target += f" {event.target.id}"
    elif event.http is not None and event.http.method:
        target = f" {event.http.method} {event.http.route or event.http.path or ''}".rstrip()
    elif event.db is not None and event.db.collection:
        target = f" {event.db.collection}"
    message = event.message or f"{who} {what}{target}"
    return f"{message}: {event.outcome}" + (f" ({event.outcome_reason})" if event.outcome_reason else "")
