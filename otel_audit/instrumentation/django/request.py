"""Django requests: each request is one action. ``BaseHandler.load_middleware`` is wrapped so every
handler (WSGI, ASGI, test client) gets our wrapper around its whole middleware chain — outermost,
without touching ``settings.MIDDLEWARE`` — and ``_get_response`` (after all middleware ran, before
the view) is the ``before_view`` stage where ``request.user`` is known. Unhandled exceptions arrive
through ``got_request_exception``. Requests to the admin site are category ``admin``."""

from __future__ import annotations

import json
import sys
import weakref
from typing import Any, Mapping

from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
from django.core.handlers.base import BaseHandler
from django.utils.functional import LazyObject, empty
from opentelemetry import context as otel_context

from otel_audit.errors import AuditUnavailable, containment
from otel_audit.event import HttpInfo, Source
from otel_audit.instrumentation._http import (FULL_RANK, HttpExchange, LazyHeaders, header_items, issued_token,
                                              payload_rank)
from otel_audit.instrumentation._request import current_exchange, reset_exchange, set_exchange

PAYLOAD_LIMIT = 64 * 1024
_UNPREFIXED = ("content-type", "content-length")
#: Set by the instrumentor: handlers built while it was on keep our wrapper, and pass through when off.
ENABLED = False


def current_django_exchange() -> HttpExchange | None:
    """This request's Django exchange (registered with :func:`set_exchange`), or None."""
    exchange = current_exchange()
    return exchange if exchange is not None and type(exchange.facts) is _DjangoFacts else None


_handlers: "weakref.WeakKeyDictionary[BaseHandler, Any]" = weakref.WeakKeyDictionary()


class _DjangoFacts:
    """ActorFacts over one Django request."""

    __slots__ = ("request", "error", "session_key", "trace_context")
    origin = "django"

    def __init__(self, request: Any) -> None:
        self.request = request
        self.error: BaseException | None = None
        self.session_key: str | None = None
        # The OTel context seen inside the middleware chain (contrib's tracing middleware may sit
        # inside ours): the request record is emitted in it, so it carries the request span's ids.
        self.trace_context: Any = None

    def framework_user(self) -> Any:
        request = self.request
        user = _attr(request, "user")
        if not issubclass(type(user), LazyObject) or user._wrapped is not empty:  # noqa: SLF001
            return _unwrapped(user)
        setup = user.__dict__.get("_setupfunc")
        if type(setup) is _LoadedUser:
            return setup.user
        session = _attr(request, "session")
        unread = getattr(session, "accessed", None) is False  # before our own reads below mark it
        if _is_djangos_get_user(setup) and session is not None and not (
                SESSION_KEY in session and BACKEND_SESSION_KEY in session):
            return None  # Django's get_user would answer AnonymousUser: left for the view to load, if it does
        loaded = _unwrapped(user)  # Django's get_user: reads the session (and may query the user)
        if unread:
            # The view has not read ``request.user``: hand it the loaded user when it does, and
            # only then mark the session read, as Django's own get_user would (our read's mark is
            # taken back by keep_session_unread once the actor is resolved).
            user._wrapped = empty  # noqa: SLF001
            user.__dict__["_setupfunc"] = _LoadedUser(session, loaded)
        return loaded

    def keep_session_unread(self) -> Any:
        """A function that marks the session unread again after the actor was resolved, when the
        app had not read it (``SessionMiddleware`` adds ``Vary: Cookie`` to responses that did)."""
        session = _attr(self.request, "session")
        if getattr(session, "accessed", None) is not False:
            return None

        def restore() -> None:
            session.accessed = False

        return restore

    def app_user(self) -> Any:
        return None

    def session(self) -> Mapping[str, Any] | None:
        return _attr(self.request, "session")

    def header(self, name: str) -> str | None:
        # ``request.headers`` parses all of META on first use; one header is one META key
        # (names with "_" and the unprefixed content headers keep Django's own mapping).
        if "_" in name or name.lower() in _UNPREFIXED:
            return self.request.headers.get(name)
        return self.request.META.get("HTTP_" + name.replace("-", "_").upper())

    def identity_facts(self) -> tuple[Any, ...] | None:
        """What the actor is resolved from, when nothing else can change it: no session (with one,
        ``session_changed`` tells), so ``request.user`` is the only moving part."""
        request = self.request
        if _attr(request, "session") is not None:
            return None
        return (_attr(request, "user"),)

    def route(self) -> str | None:
        match = _attr(self.request, "resolver_match")
        return "/" + match.route if match is not None and match.route is not None else None


_GET_USER_CODE: list[Any] = []  # the code of AuthenticationMiddleware's ``lambda: get_user(request)``, once seen


def _is_djangos_get_user(setup: Any) -> bool:
    """Whether ``request.user`` is Django's own lazy ``get_user`` (AuthenticationMiddleware), whose
    answer without the session's user id and backend keys is ``AnonymousUser``, nothing else read.
    Another middleware's lazy user (a token, a remote user) is loaded as it is."""
    code = getattr(setup, "__code__", None)
    if code is None:
        return False
    if _GET_USER_CODE:
        return code is _GET_USER_CODE[0]
    if (getattr(setup, "__module__", None) == "django.contrib.auth.middleware"
            and setup.__qualname__ == "AuthenticationMiddleware.process_request.<locals>.<lambda>"):
        _GET_USER_CODE.append(code)
        return True
    return False


class _LoadedUser:
    """``request.user``'s set-up once otel-audit has loaded the user for the actor: the view's first
    use marks the session read (as Django's ``get_user`` does) and gets the same user, no second query."""

    __slots__ = ("session", "user")

    def __init__(self, session: Any, user: Any) -> None:
        self.session = session
        self.user = user

    def __call__(self) -> Any:
        self.session.accessed = True
        return self.user


def _unwrapped(user: Any) -> Any:
    """The user behind Django's lazy ``request.user`` (loaded now if it was not yet): every
    attribute read through the ``SimpleLazyObject`` proxy costs a Python call of its own, and
    the actor reads a dozen."""
    if not issubclass(type(user), LazyObject):
        return user
    if user._wrapped is empty:  # noqa: SLF001
        user._setup()  # noqa: SLF001
    return user._wrapped  # noqa: SLF001


_MISSING = object()
_class_attrs: dict[tuple[type, str], bool] = {}


def _attr(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)`` for request attributes that middleware may or may not have set
    (``session``, ``user``, ``_post``...): an instance-dict look-up, without raising and catching an
    AttributeError per request when the attribute is absent."""
    value = obj.__dict__.get(name, _MISSING)
    if value is not _MISSING:
        return value
    key = (type(obj), name)
    elsewhere = _class_attrs.get(key)
    if elsewhere is None:  # a class attribute, property or __getattr__ could still answer
        cls = type(obj)
        elsewhere = _class_attrs[key] = hasattr(cls, name) or hasattr(cls, "__getattr__")
    return getattr(obj, name, None) if elsewhere else None


def _response_header(headers: Any, name: str) -> str | None:
    """``headers.get(name)`` of Django's ``ResponseHeaders`` (a case-insensitive mapping whose
    ``get`` raises and catches a KeyError when the header is absent)."""
    store = getattr(headers, "_store", None)
    if type(store) is dict:
        entry = store.get(name.lower())
        return entry[1] if entry is not None else None
    return headers.get(name)


def _http_info(request: Any) -> HttpInfo:
    meta = request.META
    http = HttpInfo(request.method, None, request.path)  # the route once resolved; see HttpInfo
    http.scheme = request.scheme
    http.host = meta.get("HTTP_HOST") or meta.get("SERVER_NAME")
    http.query = meta.get("QUERY_STRING") or None
    http.request_headers = LazyHeaders(_request_headers, request, "django request headers")  # type: ignore[assignment]
    return http


def _request_headers(request: Any) -> dict[str, str]:
    return dict(request.headers.items())


def _source(request: Any) -> Source:
    meta = request.META
    port = meta.get("REMOTE_PORT")
    return Source(
        address=meta.get("REMOTE_ADDR") or None,
        port=int(port) if port and str(port).isdigit() else None,
        user_agent=meta.get("HTTP_USER_AGENT") or None,
    )


def _start(request: Any) -> tuple[HttpExchange, Any] | None:
    try:
        facts = _DjangoFacts(request)
        exchange = HttpExchange(facts, _http_info(request), _source(request))
        exchange.begin()
        return exchange, set_exchange(exchange)
    except Exception as exc:  # noqa: BLE001 - never break the request
        containment.record("django request start", exc)
        return None


def _request_body(request: Any) -> Any:
    """What the app already parsed; never reads the stream itself."""
    post = _attr(request, "_post")
    if post is not None and len(post):
        return post.dict()
    body = _attr(request, "_body")
    if body and len(body) <= PAYLOAD_LIMIT and "json" in (request.content_type or ""):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return None


def _finish(exchange: HttpExchange, tokens: Any, request: Any, response: Any, error: BaseException | None) -> Any:
    """Close the request's action; returns the response to send (a 503 when fail-closed could not
    make its record durable and the response is not streamed)."""
    facts: _DjangoFacts = exchange.facts  # type: ignore[assignment]
    status = None
    try:
        http = exchange.http
        http.route = http.route or facts.route()
        http.request_body = _request_body(request)
        if response is not None:
            status = response.status_code
            headers = response.headers
            http.response_headers = LazyHeaders(header_items, headers, "django response headers")  # type: ignore[assignment]
            http.redirect_location = _response_header(headers, "Location")
            # The body is only exported at full level: parsed only when the policy can get there.
            if payload_rank() >= FULL_RANK and "json" in headers.get("Content-Type", "") \
                    and not getattr(response, "streaming", False) and len(response.content) <= PAYLOAD_LIMIT:
                http.response_body = json.loads(response.content)
            if http.method == "POST" and not getattr(response, "streaming", False) \
                    and "json" in headers.get("Content-Type", ""):
                http.issued_token = issued_token(http.method, status, response.content)
        session = _attr(request, "session")
        if session is not None:
            http.session_changed = bool(getattr(session, "modified", False)) or session.session_key != facts.session_key
    except Exception as exc:  # noqa: BLE001
        containment.record("django response", exc)
    error = error or facts.error
    if isinstance(error, AuditUnavailable):  # fail-closed refused a statement before it changed anything
        status, error = 503, None
        response = _unavailable() if response is None or not getattr(response, "streaming", False) else response
    if error is not None and status is None:
        status = 500
    trace_context = facts.trace_context
    context_token = None
    if trace_context is not None and trace_context is not otel_context.get_current():
        context_token = otel_context.attach(trace_context)
    try:
        exchange.finish(status, error)
    except AuditUnavailable:
        if response is not None and not getattr(response, "streaming", False):
            return _unavailable()
    finally:
        if context_token is not None:
            otel_context.detach(context_token)
        reset_exchange(tokens)
    return response


def _unavailable() -> Any:
    from django.http import HttpResponse

    response = HttpResponse("audit unavailable", status=503, content_type="text/plain")
    response["Retry-After"] = "5"
    return response


def _wrap_sync_chain(chain: Any) -> Any:
    def audited_chain(request: Any) -> Any:
        started = _start(request) if ENABLED else None
        if started is None:
            return chain(request)
        exchange, tokens = started
        try:
            response = chain(request)
        except BaseException as error:
            _finish(exchange, tokens, request, None, error)
            raise
        return _finish(exchange, tokens, request, response, None)

    audited_chain.__wrapped__ = chain  # type: ignore[attr-defined]
    return audited_chain


def _wrap_async_chain(chain: Any) -> Any:
    async def audited_chain(request: Any) -> Any:
        started = _start(request) if ENABLED else None
        if started is None:
            return await chain(request)
        exchange, tokens = started
        try:
            response = await chain(request)
        except BaseException as error:
            _finish(exchange, tokens, request, None, error)
            raise
        return _finish(exchange, tokens, request, response, None)

    audited_chain.__wrapped__ = chain  # type: ignore[attr-defined]
    return audited_chain


def _load_middleware(wrapped: Any, instance: BaseHandler, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    try:
        is_async = bool(args[0] if args else kwargs.get("is_async", False))
        chain = instance._middleware_chain  # noqa: SLF001
        _handlers[instance] = chain
        instance._middleware_chain = _wrap_async_chain(chain) if is_async else _wrap_sync_chain(chain)  # noqa: SLF001
    except Exception as exc:  # noqa: BLE001
        containment.record("django middleware insertion", exc)
    return result


def _before_view(request: Any) -> Any:
    """After every middleware ran: the actor is known. Returns a 503 response when fail-closed refuses."""
    exchange = current_django_exchange()
    if exchange is None:
        return None
    facts = exchange.facts
    if getattr(facts, "request", None) is not request:
        return None
    try:
        facts.trace_context = otel_context.get_current()
        session = _attr(request, "session")
        facts.session_key = session.session_key if session is not None else None
    except Exception as exc:  # noqa: BLE001
        containment.record("django session", exc)
    try:
        exchange.before_view()
    except AuditUnavailable:
        return _unavailable()
    return None


def _after_resolve(request: Any) -> None:
    exchange = current_django_exchange()
    if exchange is None:
        return
    try:
        match = _attr(request, "resolver_match")
        if match is not None:
            exchange.http.route = exchange.facts.route()  # type: ignore[attr-defined]
            if match.app_name == "admin" or "admin" in (match.namespaces or ()):
                exchange.category = "admin"
    except Exception as exc:  # noqa: BLE001
        containment.record("django route", exc)


def _get_response(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    request = args[0] if args else kwargs["request"]
    refused = _before_view(request)
    if refused is not None:
        return refused
    try:
        return wrapped(*args, **kwargs)
    finally:
        _after_resolve(request)


async def _get_response_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    request = args[0] if args else kwargs["request"]
    refused = _before_view(request)
    if refused is not None:
        return refused
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _after_resolve(request)


def _got_request_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    exchange = current_django_exchange()
    if exchange is not None:
        exchange.facts.error = sys.exc_info()[1]  # type: ignore[attr-defined]


def restore_handlers() -> None:
    """Put back every handler's own middleware chain (uninstrumenting)."""
    for handler, chain in list(_handlers.items()):
        handler._middleware_chain = chain  # noqa: SLF001
    _handlers.clear()
