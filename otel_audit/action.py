"""Closing an action: what one request (or transaction) *was*, decided once from all its facts.

An HTTP adapter's exchange, a DB adapter's changes and an auth adapter's signal all describe the
same user action. :func:`resolve` names it, in this order (first that applies):

1. the policy's route classification (``routes:``; e.g. ``POST */login`` answered 200-with-form is
   ``authentication.login_failed``);
2. a signal: an auth adapter's (Flask-Login / Django ``user_logged_in`` ...) or the app's own
   (the manual API, :func:`otel_audit.recording.name_action`): the signal and its request are one
   record;
3. the request's primary change: the most significant entry of ``audit.changes``
   (:data:`SIGNIFICANCE`: role and account changes, then delete > update > create > read);
4. REST semantics of the route template: ``DELETE /items/{id}`` is ``delete_resource`` on
   ``items``/``7``, ``PUT``/``PATCH`` update, ``POST`` to a collection create;
5. else ``http.request``.

Pure functions of the event: the policy keeps no per-request state, and ``policy explain`` runs
exactly this on an event given as JSON.
"""

from __future__ import annotations

from typing import Any

from otel_audit.event import AuditEvent, Change, DbInfo, Target

#: How much a change says about what the action was; the highest wins, ties go to the first.
SIGNIFICANCE: dict[str, int] = {
    "grant_role": 90, "revoke_role": 90,
    "delete_user": 80, "disable_user": 80, "enable_user": 80, "password_change": 80, "password_reset": 80,
    "credential_change": 80, "create_user": 70, "update_user": 60,
    "schema_change": 55,
    "delete_resource": 50, "update_resource": 40, "create_resource": 30,
    "read_resource": 10,
}

#: REST semantics by method: (action on ``/collection/{id}``, action on ``/collection``).
REST_ACTIONS: dict[str, tuple[str | None, str | None]] = {
    "DELETE": ("delete_resource", "delete_resource"),
    "PUT": ("update_resource", None),
    "PATCH": ("update_resource", None),
    "POST": (None, "create_resource"),
}


#: A route ending in one of these after an item or collection names its action (``POST
#: /notes/<pk>/delete/`` deletes note pk): the verb segments apps use instead of HTTP methods.
VERB_SEGMENTS: dict[str, str] = {
    "delete": "delete_resource", "remove": "delete_resource", "destroy": "delete_resource",
    "edit": "update_resource", "update": "update_resource",
    "create": "create_resource", "new": "create_resource", "add": "create_resource",
}


def is_request_event(event: AuditEvent) -> bool:
    """An HTTP exchange not yet named (``http.request``, or ``admin.request`` on an admin site)."""
    return event.action == "request" and event.category in ("http", "admin") and event.http is not None


def primary_change(changes: list[Change] | None) -> Change | None:
    """The most significant successful change (failed statements only when nothing else); of equal
    ones the first that names its row (an ORM's), else the first."""
    best, best_rank = None, (-1, False)
    for change in changes or ():
        rank = (SIGNIFICANCE.get(change.action, 20) - (1000 if change.error else 0), change.id is not None)
        if rank > best_rank:
            best, best_rank = change, rank
    return best


def resolve(event: AuditEvent, classifier: Any = None) -> Any:
    """Name the action of an ``http.request`` event from its facts (in the order above); returns
    the route classification when one applied (``policy explain`` shows it), else None."""
    if not is_request_event(event):
        return None
    found = classifier.classify(event) if classifier is not None else None
    signal = event.signal
    change = primary_change(event.changes)
    if found is not None:
        if signal is not None and found.category == "authentication":
            _take_signal(event, signal)
        else:
            classifier.apply_classification(event, found)
            if event.category == "authentication" and event.outcome == "success" and not event.actor.id:
                _name_principal(event, classifier)
    elif signal is not None:
        _take_signal(event, signal)
    elif change is not None:
        # On an admin site, plain data changes keep category admin; account and role changes keep
        # their own category (rules on account_management must see them wherever they were made).
        if event.category == "admin" and change.category in ("data_modification", "data_access"):
            event.attributes.setdefault("audit.via", "admin")
        else:
            if event.category == "admin":
                event.attributes.setdefault("audit.via", "admin")
            event.category = change.category
        event.action = change.action
    else:
        rest = rest_action(event)
        if rest is not None:
            event.action, event.target = rest
            event.category = "admin" if event.category == "admin" else "data_modification"
    if change is not None:
        describe_change(event, change)
    if found is None or found.category != "authentication":
        _refused_by_login_redirect(event, classifier)
    if event.action == "login_failed" and classifier is not None:
        _hide_attempted_name(event, classifier)
    return found


def _hide_attempted_name(event: AuditEvent, classifier: Any) -> None:
    """A failed login's actor is only the name that was tried (often a mistyped password): the
    policy's ``record_attempted_username`` says how it leaves, as for the form's field."""
    import dataclasses

    actor = event.actor
    if actor.id or not actor.name:
        return
    shown = classifier.attempted(actor.name)
    event.actor = dataclasses.replace(actor, name=shown)
    if shown is not None:
        event.attributes.setdefault("audit.attempted_username", shown)


#: Methods that change state: answered by a redirect to the login page, they were refused.
_WRITING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _refused_by_login_redirect(event: AuditEvent, classifier: Any) -> None:
    """A state-changing request answered by a redirect to the app's login page (Flask-Login's
    ``login_view``, Django's ``LOGIN_URL``...) did not happen: ``denied`` / ``unauthenticated``."""
    http = event.http
    if http is None or event.outcome != "success" or (http.method or "").upper() not in _WRITING_METHODS:
        return
    status = http.status_code
    if status is None or not 300 <= status < 400 or not http.redirect_location:
        return
    if classifier is not None and classifier.is_login_location(http.redirect_location):
        event.outcome, event.outcome_reason = "denied", "unauthenticated"


def _name_principal(event: AuditEvent, classifier: Any) -> None:
    """Who a successful login or token request authenticated, when no session says it: the ``sub``
    of the token it answered with (read unverified, never exported) and the username it was sent."""
    from otel_audit.actors import decode_jwt_claims
    from otel_audit.event import Actor

    http = event.http
    claims: dict[str, Any] = {}
    token = http.issued_token if http is not None else None
    if isinstance(token, dict):
        for key in ("access_token", "id_token"):
            value = token.get(key)
            if isinstance(value, str):
                claims = decode_jwt_claims(value) or {}
                if claims:
                    break
    username = _sent_username(event, classifier)
    subject = claims.get("sub")
    name = username or claims.get("preferred_username") or claims.get("username")
    if subject is None and name is None:
        return
    event.actor = Actor(id=str(subject) if subject is not None else None, name=str(name) if name else None,
                        type="user", source="issued_token" if subject is not None else "login_form",
                        verified=False if subject is not None else None)


def _sent_username(event: AuditEvent, classifier: Any) -> str | None:
    body = event.http.request_body if event.http is not None else None
    if not isinstance(body, dict) or classifier is None:
        return None
    for field in classifier.actors.username_fields:
        value = body.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip()[:256]
    return None


def _take_signal(event: AuditEvent, signal: AuditEvent) -> None:
    event.category, event.action = signal.category, signal.action
    if signal.target is not None:
        event.target = signal.target
    if signal.message:
        event.message = signal.message
    if event.error_type is None:
        event.outcome, event.outcome_reason = signal.outcome, signal.outcome_reason
    event.origin = signal.origin or event.origin
    for key, value in signal.attributes.items():
        event.attributes.setdefault(key, value)


def describe_change(event: AuditEvent, change: Change) -> None:
    """Target, ``db.*`` and changed fields of the record from its primary change."""
    if event.target is None:
        target_id = change.id
        if target_id is None and change.operation in ("UPDATE", "DELETE"):
            target_id = _single_route_parameter(event)
        event.target = Target(type=change.type or change.table, id=target_id)
    if event.db is None:
        event.db = DbInfo(system=change.system, namespace=change.namespace, collection=change.table,
                          operation=change.operation, row_count=change.rows)
    if event.changed_fields is None and change.fields:
        event.changed_fields = change.fields
    if change.attributes:
        for key, value in change.attributes.items():
            event.attributes.setdefault(key, value)
        _roles_from_request(event, change)


def _roles_from_request(event: AuditEvent, change: Change) -> None:
    """A role set from a bound parameter (``UPDATE users SET role = ?``) names no role; the request
    that asked for it usually does (``{"role": "admin"}``): its value for that field names it."""
    attributes = change.attributes or {}
    body = event.http.request_body if event.http is not None else None
    if attributes.get("audit.role.direction") != "unknown" or not isinstance(body, dict):
        return
    names = [str(body[field]) for field in attributes.get("audit.role.fields", ())
             if isinstance(body.get(field), (str, int)) and not isinstance(body.get(field), bool)]
    if names and "audit.role.names" not in event.attributes:
        event.attributes["audit.role.names"] = sorted(set(names))
        event.attributes["audit.role.source"] = "request"


def _segments(text: str) -> list[str]:
    return [part for part in text.split("/") if part]


def _is_parameter(segment: str) -> bool:
    return (segment[:1] == "<" and segment[-1:] == ">") or (segment[:1] == "{" and segment[-1:] == "}")


def _route_parameters(event: AuditEvent) -> list[tuple[int, str]] | None:
    """(segment index, value) of each parameter of the route template, read from the path; None
    when the template and the path do not line up (regex routes, mounts)."""
    http = event.http
    if http is None or not http.route or not http.path:
        return None
    route, path = _segments(http.route), _segments(http.path)
    if len(route) != len(path):
        return None
    return [(index, path[index]) for index, segment in enumerate(route) if _is_parameter(segment)]


def _single_route_parameter(event: AuditEvent) -> str | None:
    parameters = _route_parameters(event)
    return parameters[0][1] if parameters is not None and len(parameters) == 1 else None


def rest_action(event: AuditEvent) -> tuple[str, Target] | None:
    """REST semantics of the request's route template, or None: ``DELETE /items/{id}`` ->
    (``delete_resource``, items/7); ``PUT``/``PATCH`` on an item -> update; ``POST`` to a
    collection -> create; ``DELETE`` on a collection -> delete (a bulk delete); a trailing verb
    segment (:data:`VERB_SEGMENTS`, ``POST /notes/7/delete``) says the action itself."""
    http = event.http
    method = (http.method or "").upper() if http is not None else ""
    actions = REST_ACTIONS.get(method)
    if actions is None:
        return None
    parameters = _route_parameters(event)
    if parameters is None:
        return None
    route = _segments(http.route or "")
    verb = VERB_SEGMENTS.get(route[-1].lower()) if route and method != "GET" else None
    if verb is not None:
        route = route[:-1]
    if route and _is_parameter(route[-1]):
        action = verb or actions[0]
        index, value = parameters[-1]
        collection = route[index - 1] if index > 0 and not _is_parameter(route[index - 1]) else None
        return (action, Target(type=collection, id=value)) if action and collection else None
    action = verb or actions[1]
    if action is None or not route:
        return None
    return action, Target(type=route[-1])
