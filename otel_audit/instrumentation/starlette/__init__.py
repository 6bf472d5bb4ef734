"""FastAPI / Starlette adapter: every HTTP request becomes an ``http`` audit event (same semantics
as Flask, through :class:`~otel_audit.instrumentation._http.HttpExchange`).

``Starlette.build_middleware_stack`` is wrapped at class level, so every app (FastAPI included,
created before or after instrumentation) gets a pure-ASGI middleware placed just inside the
outermost ``ServerErrorMiddleware``: it sees the app's own middleware (authentication, sessions),
its exception handlers' responses (403 from ``HTTPException``) and unhandled exceptions, and the
stack still starts with ``ServerErrorMiddleware``, which contrib's FastAPI tracing relies on when it
rebuilds the stack around its span — so audit records carry the request span's trace id, whichever
instrumentation ran first.

Actor sources: ``scope["user"]`` (Starlette AuthenticationMiddleware), ``request.state.user``, the
session, headers/JWT, or ``OTEL_AUDIT_ACTOR_RESOLVER``. Async-safe: contextvars only. The request
body is teed from ``receive`` (first 64 KB) without consuming it for the app.
"""

from __future__ import annotations

import json
import weakref
from typing import Any, Collection, Mapping
from urllib.parse import parse_qsl

import starlette.applications
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from starlette.middleware.errors import ServerErrorMiddleware

from otel_audit.errors import AuditUnavailable, containment
from otel_audit.event import HttpInfo, Source
from otel_audit.instrumentation._patch import Patch
from otel_audit.instrumentation._http import TOKEN_RESPONSE_LIMIT, HttpExchange, LazyHeaders, issued_token
from otel_audit.instrumentation._request import reset_exchange, set_exchange
from otel_audit.runtime import get_runtime

PAYLOAD_LIMIT = 64 * 1024
#: Under fail-closed, responses up to this size are held until their record is durable.
HOLD_LIMIT = 1024 * 1024

_apps: "weakref.WeakSet[Any]" = weakref.WeakSet()


class _AsgiFacts:
    """ActorFacts over one ASGI scope (which the app's middleware mutates in place)."""

    __slots__ = ("scope", "_headers")
    origin = "asgi"

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope
        self._headers: dict[str, str] | None = None

    def headers(self) -> dict[str, str]:
        if self._headers is None:
            raw = self.scope.get("headers") or ()
            if type(raw) is not list and type(raw) is not tuple:
                raw = list(raw)
            headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}
            if len(headers) != len(raw):  # a repeated header: its values joined in order, as one field
                headers = {}
                for raw_name, raw_value in raw:
                    name = raw_name.decode("latin-1").lower()
                    value = raw_value.decode("latin-1")
                    headers[name] = f"{headers[name]}, {value}" if name in headers else value
            self._headers = headers
        return self._headers

    def framework_user(self) -> Any:
        return self.scope.get("user")

    def app_user(self) -> Any:
        user = _state_user(self.scope)
        if user is None:
            return None
        try:
            getattr(user, "id", None)
        except Exception:  # noqa: BLE001 - e.g. an ORM object whose session has closed
            return None
        return user

    def identity_marker(self) -> tuple[int, int, int]:
        """Changes when the app sets ``scope["user"]``, ``request.state.user`` or the session."""
        user = _state_user(self.scope)
        return id(self.scope.get("user")), id(user), id(self.scope.get("session"))

    def identity_facts(self) -> tuple[Any, ...] | None:
        """What the actor is resolved from, when nothing else can change it: without a session
        (whose contents may change in place) it is ``scope["user"]`` and ``request.state.user``;
        headers are read once."""
        scope = self.scope
        if scope.get("session") is not None:
            return None
        return scope.get("user"), _state_user(scope)

    def route(self) -> str | None:
        return _route_template(self.scope)

    def session(self) -> Mapping[str, Any] | None:
        session = self.scope.get("session")
        return session if isinstance(session, Mapping) else None

    def header(self, name: str) -> str | None:
        return self.headers().get(name.lower())


def _state_user(scope: dict[str, Any]) -> Any:
    """``request.state.user``: the ``user`` of ``scope["state"]`` (a mapping, or an object)."""
    state = scope.get("state")
    if state is None:
        return None
    if type(state) is dict or isinstance(state, Mapping):
        return state.get("user")
    return getattr(state, "user", None)


def _http_info(scope: dict[str, Any], facts: _AsgiFacts) -> HttpInfo:
    headers = facts.headers()
    server = scope.get("server")
    host = headers.get("host") or (f"{server[0]}:{server[1]}" if server else None)
    query = scope.get("query_string") or b""
    http = HttpInfo(scope.get("method"), None, scope.get("path"))  # the route once matched; see HttpInfo
    http.scheme = scope.get("scheme")
    http.host = host
    http.query = query.decode("latin-1") or None
    http.request_headers = dict(headers)
    return http


def _source(scope: dict[str, Any], facts: _AsgiFacts) -> Source:
    client = scope.get("client")
    return Source(
        address=client[0] if client else None,
        port=client[1] if client else None,
        user_agent=facts.headers().get("user-agent"),
    )


def _closed() -> bool:
    """Whether the running fail mode is ``closed`` (read once per request)."""
    runtime = get_runtime()
    return runtime is not None and runtime.config.fail_mode == "closed"


def _route_template(scope: dict[str, Any]) -> str | None:
    """The matched route's template as the client addressed it. Routes of included routers and
    mounts know only their own part (FastAPI 0.165 matches ``/users/{id}`` inside
    ``include_router(..., prefix="/api/v1")``): the prefix is taken from the request path."""
    route = scope.get("route")
    template = getattr(route, "path", None) or getattr(route, "path_format", None)
    if not template:
        return None
    path = scope.get("path") or ""
    return _with_prefix(template, path)


def _with_prefix(template: str, path: str) -> str:
    template_parts = [part for part in template.split("/") if part]
    path_parts = [part for part in path.split("/") if part]
    extra = len(path_parts) - len(template_parts)
    if extra <= 0 or any(":path" in part for part in template_parts):
        return template
    tail = path_parts[extra:]
    for want, got in zip(template_parts, tail):
        if not (want.startswith("{") and want.endswith("}")) and want != got:
            return template  # not this template's shape: leave it as the router says
    return "/" + "/".join(path_parts[:extra] + template_parts) + ("/" if template.endswith("/") and template != "/" else "")


def _parse_body(body: bytes, content_type: str | None) -> Any:
    if not body:
        return None
    content_type = (content_type or "").split(";", 1)[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return json.loads(body)
        except ValueError:
            return None
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
    return None


async def _refuse(send: Any) -> None:
    """Fail-closed: a required record cannot be made durable, so the app does not run."""
    body = b"audit unavailable"
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


#: Marks a scope whose request already has an action open (the key travels into mounted apps' scopes).
_AUDITED = "otel_audit.action_open"


class AuditMiddleware:
    """Pure ASGI middleware: opens the request scope, records the request once the response is known."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # An app mounted in an audited app (``app.mount("/legacy", Starlette(...))``) has its own stack:
        # the outer middleware already holds this request's action, so the inner one only passes it on.
        if scope.get("type") != "http" or not _ENABLED or scope.get(_AUDITED):
            await self.app(scope, receive, send)
            return
        try:
            scope[_AUDITED] = True
            facts = _AsgiFacts(scope)
            exchange = HttpExchange(facts, _http_info(scope, facts), _source(scope, facts))
            exchange.begin()
            exchange_token = set_exchange(exchange)
        except Exception as exc:  # noqa: BLE001 - never break the request
            containment.record("asgi request start", exc)
            await self.app(scope, receive, send)
            return
        try:
            # The app's own auth runs inside; DB events refresh the actor lazily (request_actor).
            exchange.before_view()
        except AuditUnavailable:
            await _refuse(send)
            try:
                exchange.finish(503)
            except AuditUnavailable:
                pass
            reset_exchange(exchange_token)
            return

        body = bytearray()
        response: dict[str, Any] = {}
        answer = bytearray() if scope.get("method") == "POST" else None  # for an issued token
        # Fail-closed: the response is held until its record is durable, so a record that cannot be
        # written turns it into a 503 (up to HOLD_LIMIT bytes; past that it streams, as documented).
        held: list[Any] | None = [] if _closed() else None
        held_bytes = 0

        async def tee_receive() -> Any:
            message = await receive()
            if message.get("type") == "http.request" and len(body) < PAYLOAD_LIMIT:
                body.extend(message.get("body", b"")[: PAYLOAD_LIMIT - len(body)])
            return message

        async def observe_send(message: Any) -> None:
            nonlocal held, held_bytes
            kind = message.get("type")
            if kind == "http.response.start":
                response["status"] = message.get("status")
                response["headers"] = message.get("headers") or ()
            elif kind == "http.response.body" and answer is not None and len(answer) <= TOKEN_RESPONSE_LIMIT:
                answer.extend(message.get("body", b"") or b"")
            if held is not None:
                held.append(message)
                held_bytes += len(message.get("body", b"") or b"")
                if held_bytes <= HOLD_LIMIT:
                    return
                containment.record("asgi response over the fail-closed hold limit", AuditUnavailable("streamed"))
                for earlier in held:
                    await send(earlier)
                held = None
                return
            await send(message)

        try:
            await self.app(scope, tee_receive, observe_send)
        except AuditUnavailable:  # a statement refused under fail-closed before it changed anything
            self._finish(exchange, scope, body, {"status": 503}, None)
            reset_exchange(exchange_token)
            if held is not None or not response:  # nothing reached the client yet
                await _refuse(send)
                return
            raise
        except BaseException as error:
            self._finish(exchange, scope, body, response, error)
            reset_exchange(exchange_token)
            if held:
                for message in held:
                    await send(message)
            raise
        if answer:
            exchange.http.issued_token = issued_token("POST", response.get("status"), bytes(answer))
        durable = self._finish(exchange, scope, body, response, None)
        reset_exchange(exchange_token)
        if held is not None:
            if durable is False:
                await _refuse(send)
                return
            for message in held:
                await send(message)

    @staticmethod
    def _finish(exchange: HttpExchange, scope: dict[str, Any], body: bytearray, response: dict[str, Any],
                error: BaseException | None) -> bool:
        """Close the request's action; False when fail-closed could not make its record durable."""
        try:
            http = exchange.http
            http.route = _route_template(scope) or http.route
            if body:
                headers = http.request_headers or {}
                http.request_body = _parse_body(bytes(body), headers.get("content-type"))
            raw_headers = response.get("headers", ())
            if raw_headers:
                http.response_headers = LazyHeaders(_response_headers, raw_headers, "asgi response headers")  # type: ignore[assignment]
                http.redirect_location = _last_header(raw_headers, b"location")
            else:
                http.response_headers = None
                http.redirect_location = None
        except Exception as exc:  # noqa: BLE001
            containment.record("asgi response", exc)
        status = response.get("status")
        if error is not None and status is None:
            status = 500
        try:
            exchange.finish(status, error)
        except AuditUnavailable:  # fail-closed: held responses become a 503 (see __call__)
            return False
        return True


def _response_headers(raw_headers: Any) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}


def _last_header(raw_headers: Any, name: bytes) -> str | None:
    """What ``_response_headers(raw)[name]`` would hold (the last value of that name), without the dict."""
    found = None
    for key, value in raw_headers:
        if key == name or key.lower() == name:
            found = value
    return found.decode("latin-1") if found is not None else None


def _build_middleware_stack(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    stack = wrapped(*args, **kwargs)
    try:
        _apps.add(instance)
        if isinstance(stack, AuditMiddleware):
            return stack
        if isinstance(stack, ServerErrorMiddleware):
            if not isinstance(stack.app, AuditMiddleware):
                stack.app = AuditMiddleware(stack.app)
            return stack
        return AuditMiddleware(stack)
    except Exception as exc:  # noqa: BLE001
        containment.record("asgi middleware insertion", exc)
        return stack


_ENABLED = False
_patches: list[Patch] = []


def _app_classes() -> list[type]:
    """Starlette, plus FastAPI, which overrides ``build_middleware_stack`` without calling super()."""
    classes: list[type] = [starlette.applications.Starlette]
    try:
        # The defining module, not ``fastapi.FastAPI``: contrib's tracing swaps that for a subclass.
        from fastapi.applications import FastAPI
    except ImportError:
        return classes
    if "build_middleware_stack" in vars(FastAPI):
        classes.append(FastAPI)
    return classes


class StarletteAuditInstrumentor(BaseInstrumentor):
    """Audits every request of every Starlette/FastAPI app."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("starlette >= 0.27",)

    def _instrument(self, **kwargs: Any) -> None:
        global _ENABLED
        _ENABLED = True
        _patches[:] = [Patch(cls, "build_middleware_stack", _build_middleware_stack) for cls in _app_classes()]
        for patch in _patches:
            patch.install()
        self._rebuild()

    def _uninstrument(self, **kwargs: Any) -> None:
        global _ENABLED
        _ENABLED = False
        for patch in reversed(_patches):
            patch.remove()
        _patches.clear()
        self._rebuild()

    @staticmethod
    def _rebuild() -> None:
        """Apps that already built their stack rebuild it on the next request."""
        for app in list(_apps):
            try:
                app.middleware_stack = None
            except Exception as exc:  # noqa: BLE001
                containment.record("asgi rebuild", exc)
