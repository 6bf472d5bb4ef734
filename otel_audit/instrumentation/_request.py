"""The live HTTP exchange of the current request, for adapters that record inside it.

DB and model events need the request's actor and route, but apps often establish them only after
the request arrived (a FastAPI dependency setting ``request.state.user``, Django's
AuthenticationMiddleware, the router matching a route template). The ASGI and Django adapters
register their exchange here; events recorded inside the request complete the scope: the route
template is filled in, and the actor is re-resolved whenever the app's identity facts changed
(the app's own verified user beats an unverified JWT claim) — a cheap marker comparison, not a
resolution per statement. Async-safe: a contextvar, never a thread-local.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from otel_audit.context import current_scope
from otel_audit.event import Actor

_exchange: ContextVar["_Live | None"] = ContextVar("otel_audit_exchange", default=None)


_UNSEEN = object()


class _Live:
    __slots__ = ("exchange", "marker")

    def __init__(self, exchange: Any) -> None:
        self.exchange = exchange
        self.marker: Any = _UNSEEN


def set_exchange(exchange: Any) -> Token:
    return _exchange.set(_Live(exchange))


def reset_exchange(token: Token) -> None:
    try:
        _exchange.reset(token)
    except ValueError:  # token from another context (ASGI task switch): just clear
        _exchange.set(None)


def request_actor() -> Actor:
    """The actor of the current request (scope completed once per request); a system actor outside one."""
    scope = current_scope()
    if scope is None:
        return Actor(type="system")
    live = _exchange.get()
    if live is None or live.exchange.scope is not scope:
        return scope.actor
    facts = live.exchange.facts
    identity_marker = getattr(facts, "identity_marker", None)
    marker = identity_marker() if identity_marker is not None else None
    if marker != live.marker:  # facts without a marker: refreshed once
        live.marker = marker
        live.exchange.refresh_actor()
    if scope.http is not None and scope.http.route is None:
        route = getattr(facts, "route", None)
        if route is not None:
            scope.http.route = route()
    return scope.actor
