"""Django auth signals: ``user_logged_in`` / ``user_logged_out`` / ``user_login_failed`` are facts of
the request's action (a record of their own outside a request). Of a failed login only the attempted
username is taken: Django passes cleansed credentials."""

from __future__ import annotations

from typing import Any

from otel_audit.actors import actor_from_user
from otel_audit.context import current_scope
from otel_audit.errors import containment
from otel_audit.event import Actor, AuditEvent, HttpInfo, Source
from otel_audit.instrumentation._request import scope_and_actor
from otel_audit.recording import note_signal


def _scope_facts() -> tuple[Source, HttpInfo | None]:
    scope = current_scope()
    return (scope.source, scope.http) if scope is not None else (Source(), None)


def request_actor() -> Actor:
    return scope_and_actor()[1]


def _auth_event(action: str, outcome: str, actor: Actor, reason: str | None = None) -> None:
    source, http = _scope_facts()
    note_signal(AuditEvent(category="authentication", action=action, outcome=outcome, outcome_reason=reason,
                           actor=actor, source=source, http=http, origin="django.auth"))


def _logged_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    try:
        _auth_event("login", "success", actor_from_user(user, "django_auth") or Actor())
    except Exception as exc:  # noqa: BLE001
        containment.record("django login signal", exc)


def _logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    try:
        _auth_event("logout", "success", actor_from_user(user, "django_auth") or request_actor())
    except Exception as exc:  # noqa: BLE001
        containment.record("django logout signal", exc)


def _login_failed(sender: Any, credentials: Any = None, request: Any = None, **kwargs: Any) -> None:
    try:
        from django.contrib.auth import get_user_model

        field = getattr(get_user_model(), "USERNAME_FIELD", "username")
        attempted = (credentials or {}).get(field) or (credentials or {}).get("username")
        actor = Actor(name=str(attempted) if attempted else None, type="user", source="login_attempt", verified=False)
        _auth_event("login_failed", "failure", actor, "invalid credentials")
    except Exception as exc:  # noqa: BLE001
        containment.record("django login_failed signal", exc)
