"""The live HTTP exchange of the current request, for adapters that record inside it.

DB and model events need the request's actor, but apps often establish it only after the request
arrived (a FastAPI dependency setting ``request.state.user``, Django's AuthenticationMiddleware).
The ASGI and Django adapters register their exchange here; :func:`request_actor` re-resolves an
actor that was still anonymous. Async-safe: a contextvar, never a thread-local.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from otel_audit.context import current_scope
from otel_audit.event import Actor

_exchange: ContextVar[Any] = ContextVar("otel_audit_exchange", default=None)


def set_exchange(exchange: Any) -> Token:
    return _exchange.set(exchange)


def reset_exchange(token: Token) -> None:
    try:
        _exchange.reset(token)
    except ValueError:  # token from another context (ASGI task switch): just clear
        _exchange.set(None)


def request_actor() -> Actor:
    """The actor of the current request (re-resolved once if still anonymous); a system actor outside one."""
    scope = current_scope()
    if scope is None:
        return Actor(type="system")
    if not scope.actor.id:
        exchange = _exchange.get()
        if exchange is not None and exchange.scope is scope:
            exchange.refresh_actor()
    return scope.actor
