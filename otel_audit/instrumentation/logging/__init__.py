"""stdlib ``logging`` bridge: audit-ish log lines the app already writes become audit events.

A :class:`AuditLogHandler` is attached to the configured loggers (``OTEL_AUDIT_LOGGERS``, comma
separated; default ``audit,security,django.security``) — never the root — so their records are
classified, redacted and delivered like every other event. The app describes a line with ``extra``
keys (all optional):

=================  ==========================================================================
``audit_category`` one of the audit categories (default: from the action's catalogue entry;
                   ``authorization`` for ``django.security.*``, else ``admin``)
``audit_action``   the verb, e.g. ``grant_role`` (default: the logger suffix for
                   ``django.security.*``, else the message template as snake_case)
``audit_outcome``  success | failure | denied | unknown (default: ``denied`` for
                   ``django.security.*``; ``failure`` at ERROR and above; else ``success``)
``audit_reason``   why (``audit.outcome.reason``)
``audit_actor``    the actor's id (default: the current request's actor)
``audit_target``   ``"type:id"``, a mapping with type/id/name, or a Target
=================  ==========================================================================

Other ``extra`` keys with plain values are kept as ``app.<key>`` attributes. The rendered message
is the record's body. Configuring logging later (``dictConfig``) re-attaches the handler.
"""

from __future__ import annotations

import logging
import logging.config
import re
from contextvars import ContextVar
from typing import Any, Collection, Mapping

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_audit.catalogue import ACTIONS
from otel_audit.context import current_scope
from otel_audit.errors import containment
from otel_audit.event import CATEGORIES, OUTCOMES, Actor, AuditEvent, Source, Target
from otel_audit.config import setting
from otel_audit.instrumentation._patch import Patch
from otel_audit.instrumentation._request import request_actor
from otel_audit.runtime import record_event

LOGGERS_ENV = "OTEL_AUDIT_LOGGERS"
DEFAULT_LOGGERS = ("audit", "security", "django.security")
SECURITY_PREFIX = "django.security."

#: Attributes every LogRecord has; anything else in ``record.__dict__`` came from ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_AUDIT_KEYS = ("audit_category", "audit_action", "audit_outcome", "audit_reason", "audit_actor", "audit_target")
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_in_handler: ContextVar[bool] = ContextVar("otel_audit_in_log_handler", default=False)


def configured_loggers() -> tuple[str, ...]:
    return setting(LOGGERS_ENV) or DEFAULT_LOGGERS


def _snake(text: str) -> str:
    return _NOT_WORD.sub("_", text.lower()).strip("_")[:64] or "log"


def _target(value: Any) -> Target | None:
    if value is None or isinstance(value, Target):
        return value
    if isinstance(value, Mapping):
        return Target(type=value.get("type"), id=_str(value.get("id")), name=value.get("name"))
    kind, sep, ident = str(value).partition(":")
    return Target(type=kind, id=ident) if sep else Target(id=kind)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def event_from_record(record: logging.LogRecord) -> AuditEvent:
    """Translate one log record (see the module docstring for the ``extra`` keys)."""
    extra = record.__dict__
    security = record.name.startswith(SECURITY_PREFIX) or record.name == SECURITY_PREFIX.rstrip(".")
    action = extra.get("audit_action")
    if not action:
        action = _snake(record.name[len(SECURITY_PREFIX):] or "security") if security else _snake(str(record.msg))
    category = extra.get("audit_category")
    if category not in CATEGORIES:
        known = ACTIONS.get(action)
        category = known[0] if known else ("authorization" if security else "admin")
    outcome = extra.get("audit_outcome")
    if outcome not in OUTCOMES:
        outcome = "denied" if security else ("failure" if record.levelno >= logging.ERROR else "success")
    scope = current_scope()
    actor_id = extra.get("audit_actor")
    actor = Actor(id=str(actor_id), type="user", source="log") if actor_id is not None else request_actor()
    event = AuditEvent(
        category=category,
        action=str(action),
        outcome=outcome,
        outcome_reason=_str(extra.get("audit_reason")),
        actor=actor,
        source=scope.source if scope is not None else Source(),
        http=scope.http if scope is not None else None,
        target=_target(extra.get("audit_target")),
        message=record.getMessage(),
        origin=f"logging.{record.name}",
    )
    if record.exc_info and record.exc_info[0] is not None:
        exc_type = record.exc_info[0]
        event.error_type = f"{exc_type.__module__}.{exc_type.__qualname__}".removeprefix("builtins.")
    event.attributes["audit.log.logger"] = record.name
    event.attributes["audit.log.level"] = record.levelname
    for key, value in extra.items():
        if key not in _STANDARD and key not in _AUDIT_KEYS and isinstance(value, (str, bool, int, float)):
            event.attributes[f"app.{key}"] = value
    return event


class AuditLogHandler(logging.Handler):
    """Turns each record into an audit event; never raises into the logging call."""

    def emit(self, record: logging.LogRecord) -> None:
        if _in_handler.get():  # a log line written while recording one: do not loop
            return
        token = _in_handler.set(True)
        try:
            record_event(event_from_record(record))
        except Exception as exc:  # noqa: BLE001 - logging must never fail because auditing did
            containment.record("logging bridge", exc)
        finally:
            _in_handler.reset(token)


_handler = AuditLogHandler(level=logging.INFO)
_attached: dict[str, bool] = {}  # logger name -> whether we created it


def _attach() -> None:
    existing = logging.root.manager.loggerDict
    for name in configured_loggers():
        created = name not in existing or isinstance(existing[name], logging.PlaceHolder)
        logger = logging.getLogger(name)
        _attached.setdefault(name, created)
        if _handler not in logger.handlers:
            logger.addHandler(_handler)
        if logger.getEffectiveLevel() > logging.INFO and logger.level == logging.NOTSET:
            # An unconfigured logger inherits root's WARNING and would drop INFO audit lines
            # before any handler sees them.
            logger.setLevel(logging.INFO)


def _after_configure(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``dictConfig``/``fileConfig`` drop handlers of loggers they configure and disable loggers
    they do not name: re-attach, and re-enable the loggers that exist only because we made them."""
    result = wrapped(*args, **kwargs)
    try:
        config = args[0] if args else None
        named = set(config.get("loggers", {})) if isinstance(config, Mapping) else set()
        for name, created in _attached.items():
            logger = logging.getLogger(name)
            if created and logger.disabled and name not in named:
                logger.disabled = False
        _attach()
    except Exception as exc:  # noqa: BLE001
        containment.record("logging bridge configure", exc)
    return result


_PATCHES = (Patch(logging.config, "dictConfig", _after_configure), Patch(logging.config, "fileConfig", _after_configure))


class LoggingAuditInstrumentor(BaseInstrumentor):
    """Attaches :class:`AuditLogHandler` to the configured loggers."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        try:
            _attach()
        except Exception as exc:  # noqa: BLE001
            containment.record("logging bridge attach", exc)
        for patch in _PATCHES:
            patch.install()

    def _uninstrument(self, **kwargs: Any) -> None:
        for patch in _PATCHES:
            patch.remove()
        for name in list(_attached):
            logging.getLogger(name).removeHandler(_handler)
        _attached.clear()
