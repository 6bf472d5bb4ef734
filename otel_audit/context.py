"""The request an event happens in, carried by contextvars (async-safe, no thread-locals).

HTTP adapters open a :class:`RequestScope`; DB and manual events in the same request pick up its
actor, source and route, so "user 42 deleted row 7 via DELETE /posts/7" is one story.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Callable

from otel_audit.event import Actor, HttpInfo, Source


@dataclass(slots=True)
class RequestScope:
    actor: Actor = field(default_factory=Actor)
    source: Source = field(default_factory=Source)
    http: HttpInfo | None = None


_current: ContextVar[RequestScope | None] = ContextVar("otel_audit_request", default=None)


#: The current request's scope, or None outside one (``ContextVar.get`` itself: no wrapper call on
#: the hot path, where every DB statement asks).
current_scope: Callable[[], RequestScope | None] = _current.get

#: Open ``scope`` for the current context; returns the token for :func:`exit_scope`.
enter_scope: Callable[[RequestScope], Token] = _current.set


def exit_scope(token: Token) -> None:
    try:
        _current.reset(token)
    except ValueError:  # token from another context (e.g. ASGI task switch): just clear
        _current.set(None)
