"""The manual API, for what no framework hook sees: role escalations, exports, config changes.

    otel_audit.record("authorization", "grant_role", target=Target("user", "42"), attributes={...})

    @otel_audit.audited("data_access", "export", target_type="report")
    def export_report(...): ...

    with otel_audit.audited("configuration", "config_change") as audit:
        audit.target = Target("setting", "mfa_required")
        ...

``audited`` records success when the block returns and failure (with ``error.type``) when it
raises; the exception always propagates unchanged. The actor and source of the surrounding HTTP
request are used unless given. Inside a request, the first manual event names the request's action:
it becomes the request's one record (with its route, status and database changes), written when the
response is known; a second one in the same request is a record of its own.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping

from otel_audit.context import current_scope
from otel_audit.event import CATEGORIES, OUTCOMES, Actor, AuditEvent, Source, Target
from otel_audit.recording import name_action


def build_event(
    category: str,
    action: str,
    outcome: str = "success",
    *,
    actor: Actor | str | None = None,
    target: Target | None = None,
    reason: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    message: str | None = None,
    source: Source | None = None,
) -> AuditEvent:
    if category not in CATEGORIES:
        raise ValueError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    if not action or not isinstance(action, str):
        raise ValueError("action must be a non-empty string such as 'grant_role'")
    scope = current_scope()
    if isinstance(actor, str):
        actor = Actor(id=actor, type="user", source="manual")
    event = AuditEvent(
        category=category,
        action=action,
        outcome=outcome,
        outcome_reason=reason,
        actor=actor or (scope.actor if scope else Actor()),
        source=source or (scope.source if scope else Source()),
        target=target,
        http=scope.http if scope else None,
        message=message,
        attributes=dict(attributes or {}),
        origin="manual",
    )
    return event


def record(category: str, action: str, outcome: str = "success", **kwargs: Any) -> AuditEvent:
    """Record one event now. Returns the event (its ``event_id`` is what backends dedupe on).

    Bad arguments raise ``ValueError`` (a programming error, found in tests); failures inside
    the audit pipeline are contained and counted.
    """
    event = build_event(category, action, outcome, **kwargs)
    name_action(event)
    return event


def _http_status(exc: BaseException | None) -> int | None:
    """The HTTP status an exception stands for (werkzeug/Django/Starlette HTTP exceptions carry
    ``code`` or ``status_code``), or None for an ordinary error."""
    for name in ("code", "status_code"):
        value = getattr(exc, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


class audited:  # noqa: N801 - used as a decorator and a context manager, like contextlib's
    """Record success, or failure with the exception type, around a block or function."""

    def __init__(
        self,
        category: str,
        action: str,
        *,
        target: Target | None = None,
        target_type: str | None = None,
        actor: Actor | str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        build_event(category, action)  # validate arguments now, where the mistake is
        self.category = category
        self.action = action
        self.target = target or (Target(type=target_type) if target_type else None)
        self.actor = actor
        self.attributes: dict[str, Any] = dict(attributes or {})
        self.reason: str | None = None

    def __enter__(self) -> "audited":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        event = build_event(
            self.category,
            self.action,
            "success" if exc_type is None else "failure",
            actor=self.actor,
            target=self.target,
            reason=self.reason,
            attributes=self.attributes,
        )
        if exc_type is not None:
            event.error_type = f"{exc_type.__module__}.{exc_type.__qualname__}".removeprefix("builtins.")
            event.outcome_reason = event.outcome_reason or "exception"
            status = _http_status(exc)
            if status is not None:  # abort(403) / HTTPException(401): the HTTP meaning, not a crash
                from otel_audit.outcome import outcome_for_status

                event.outcome, event.outcome_reason = outcome_for_status(status)
                event.error_type = None if event.outcome == "success" else event.error_type
        name_action(event)
        return False  # never swallow the exception

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        options = dict(target=self.target, actor=self.actor, attributes=self.attributes)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with audited(self.category, self.action, **options):
                    return await func(*args, **kwargs)

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with audited(self.category, self.action, **options):
                return func(*args, **kwargs)

        return wrapper
