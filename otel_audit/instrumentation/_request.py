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

from otel_audit.context import RequestScope, current_scope
from otel_audit.event import Actor

_exchange: ContextVar["_Live | None"] = ContextVar("otel_audit_exchange", default=None)


_UNSEEN = object()


class _Live:
    """The registered exchange, with what :func:`request_actor` asks of it looked up once."""

    __slots__ = ("exchange", "scope", "marker", "identity_marker", "route")

    def __init__(self, exchange: Any) -> None:
        self.exchange = exchange
        self.scope = exchange.scope
        self.marker: Any = _UNSEEN
        facts = exchange.facts
        has_marker, has_route = _shape_of(type(facts))
        self.identity_marker = facts.identity_marker if has_marker else None
        self.route = facts.route if has_route else None


_shapes: dict[type, tuple[bool, bool]] = {}


def _shape_of(cls: type) -> tuple[bool, bool]:
    """Whether facts of this class offer ``identity_marker`` / ``route`` (asked once per class)."""
    shape = _shapes.get(cls)
    if shape is None:
        shape = _shapes[cls] = (hasattr(cls, "identity_marker"), hasattr(cls, "route"))
    return shape


def set_exchange(exchange: Any) -> Token:
    return _exchange.set(_Live(exchange))


def reset_exchange(token: Token) -> None:
    try:
        _exchange.reset(token)
    except ValueError:  # token from another context (ASGI task switch): just clear
        _exchange.set(None)


def current_exchange() -> Any:
    """The exchange registered by :func:`set_exchange` in this context, or None."""
    live = _exchange.get()
    return live.exchange if live is not None else None


def request_actor() -> Actor:
    """The actor of the current request (scope completed once per request); a system actor outside one."""
    return scope_and_actor()[1]


def scope_and_actor() -> tuple[RequestScope | None, Actor]:
    """(current scope, its actor) in one look-up: what every DB and model event needs."""
    scope = current_scope()
    if scope is None:
        return None, Actor(type="system")
    live = _exchange.get()
    if live is None or live.scope is not scope:
        return scope, scope.actor
    identity_marker = live.identity_marker
    marker = identity_marker() if identity_marker is not None else None
    if marker != live.marker:  # facts without a marker: refreshed once
        live.marker = marker
        live.exchange.refresh_actor()
    http = scope.http
    if http is not None and http.route is None:
        route = live.route
        if route is not None:
            http.route = route()
    return scope, scope.actor
