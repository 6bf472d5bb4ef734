"""Flask adapter: every request is one action (one record); Flask-Login's login/logout signals
are facts of that action.

Hooks ``Flask.full_dispatch_request`` at class level (a plain-function hook, ``_patch.py``), so
apps created before and after instrumentation are both covered and the request/app context
(``g``, ``session``, ``url_rule``) is live on both sides of the view.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Collection, Mapping

import flask
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_audit.context import current_scope
from otel_audit.errors import AuditUnavailable, containment
from otel_audit.event import Actor, AuditEvent, HttpInfo, Source
from otel_audit.instrumentation._http import (FULL_RANK, HttpExchange, LazyHeaders, header_items, issued_token,
                                              payload_rank)
from otel_audit.instrumentation._patch import Patch
from otel_audit.recording import note_signal

_PAYLOAD_LIMIT = 64 * 1024
_CURRENT_EXCHANGE: ContextVar[HttpExchange | None] = ContextVar("otel_audit_flask_exchange", default=None)
# Flask's own context variables (what the ``request``/``g``/``session`` proxies resolve through),
# read directly: a proxy hop per fact adds up on every request.
_request_ctx: ContextVar[Any] = flask.globals._cv_request  # noqa: SLF001
_app_ctx: ContextVar[Any] = flask.globals._cv_app  # noqa: SLF001

try:
    from flask_login import current_user as _current_user  # optional
except ImportError:
    _current_user = None


class _FlaskFacts:
    """ActorFacts over one live Flask request context, made when the request starts: the context
    and its session are looked up once, not once per fact."""

    __slots__ = ("_ctx", "_session")
    origin = "flask"

    def __init__(self, ctx: Any, session: Any) -> None:
        self._ctx = ctx
        self._session = session

    def framework_user(self) -> Any:
        if _current_user is None:
            return None
        app_ctx = _app_ctx.get(None)
        if app_ctx is None or not _has_login_manager(app_ctx.app):
            return None  # no login manager on this app: Flask-Login has no user to give
        try:
            return _current_user._get_current_object()  # noqa: SLF001 - unwrap the LocalProxy
        except Exception:  # noqa: BLE001
            return None

    def app_user(self) -> Any:
        return _app_ctx.get().g.get("user")

    def session(self) -> Mapping[str, Any] | None:
        return self._session

    def keep_session_unread(self) -> Any:
        """A function that marks the session unread again after the actor was resolved, when the
        app had not read it (Flask adds ``Vary: Cookie`` to responses whose session was read).

        Flask-Login keeps the user it loads in ``g._login_user``, where the view's ``current_user``
        finds it without reading the session: an anonymous one we loaded is dropped again (reloading
        it reads the session, as it would have); a signed-in one stays, and so does the mark."""
        session = self._session
        if getattr(session, "accessed", None) is not False:
            return None
        g = _app_ctx.get().g
        login_user_loaded = "_login_user" in g

        def restore() -> None:
            if not login_user_loaded and "_login_user" in g:
                if getattr(g._login_user, "is_authenticated", False):  # noqa: SLF001
                    return
                g.pop("_login_user")
            session.accessed = False

        return restore

    def header(self, name: str) -> str | None:
        # ``request.headers.get(name)`` is a WSGI environ look-up (werkzeug's EnvironHeaders), minus
        # the KeyError it raises and catches for every absent header.
        key = name.upper().replace("-", "_")
        return self._ctx.request.environ.get(key if key in _UNPREFIXED else f"HTTP_{key}")


def _session_of(ctx: Any) -> Any:
    """The request's session without marking it read: Flask 3.1.3 marks it on ``ctx.session`` (a
    property over ``ctx._session``), earlier releases on the session's own reads."""
    quiet = _SESSION_PROPERTY.get(type(ctx))
    if quiet is None:
        quiet = _SESSION_PROPERTY[type(ctx)] = isinstance(getattr(type(ctx), "session", None), property)
    if quiet:
        session = ctx._session  # noqa: SLF001
        return session if session is not None else ctx.session  # not opened: as before, Flask says so
    return ctx.session


_SESSION_PROPERTY: dict[type, bool] = {}
_UNPREFIXED = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})
_class_login_manager: dict[type, bool] = {}


def _has_login_manager(app: Any) -> bool:
    """``getattr(app, "login_manager", None) is not None`` without raising and catching an
    AttributeError per request on apps that never set one up (``init_app`` sets an instance attribute)."""
    if app.__dict__.get("login_manager") is not None:
        return True
    cls = type(app)
    on_class = _class_login_manager.get(cls)
    if on_class is None:
        on_class = _class_login_manager[cls] = hasattr(cls, "login_manager") or hasattr(cls, "__getattr__")
    return on_class and getattr(app, "login_manager", None) is not None


def _first_header(headers: Any, name: str) -> str | None:
    """``headers.get(name)`` of a werkzeug ``Headers`` (the first value; ``name`` lower-case),
    without the exception its ``get`` raises and catches when the header is absent."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _http_info(request: flask.Request) -> HttpInfo:
    rule = request.url_rule
    body: Any = None
    # No CONTENT_LENGTH (or "0"): no body to look at, without werkzeug parsing two headers.
    content_length = request.content_length if request.environ.get("CONTENT_LENGTH", "0") not in ("", "0") else None
    if content_length and content_length <= _PAYLOAD_LIMIT:
        if request.is_json:
            try:
                body = request.get_json(silent=True)
            except RecursionError:  # nested too deep to parse: the request is still audited, without it
                body = None
        elif request.form:
            body = request.form.to_dict(flat=True)
    http = HttpInfo(request.method, rule.rule if rule is not None else None, request.path)  # see HttpInfo
    http.scheme = request.scheme
    http.host = request.host
    http.query = request.query_string.decode("latin-1") or None
    http.request_headers = LazyHeaders(header_items, request.headers, "flask request headers")  # type: ignore[assignment]
    http.request_body = body
    return http


def _source(request: flask.Request) -> Source:
    environ = request.environ
    port = environ.get("REMOTE_PORT")
    return Source(
        address=request.remote_addr,
        port=int(port) if port and str(port).isdigit() else None,
        # what ``request.user_agent.string`` holds, without building the UserAgent object
        user_agent=environ.get("HTTP_USER_AGENT") or None,
    )


def _response_facts(exchange: HttpExchange, response: flask.Response, session: Any, session_before: Any) -> None:
    http = exchange.http
    headers = response.headers
    http.response_headers = LazyHeaders(header_items, headers, "flask response headers")  # type: ignore[assignment]
    http.redirect_location = _first_header(headers, "location")
    if payload_rank() >= FULL_RANK and response.is_json:  # the body is only exported at full level
        http.response_body = response.get_json(silent=True)
    if http.method == "POST" and response.is_json and not response.is_streamed:
        http.issued_token = issued_token(http.method, response.status_code, response.get_data())
    try:
        http.session_changed = dict(session) != session_before
    except Exception:  # noqa: BLE001
        http.session_changed = None


def _full_dispatch_request(wrapped: Any, instance: flask.Flask, args: Any, kwargs: Any) -> Any:
    try:
        ctx = _request_ctx.get()
        request = ctx.request
        session = _session_of(ctx)
        exchange = HttpExchange(_FlaskFacts(ctx, session), _http_info(request), _source(request))
        session_before = dict(session)
        exchange.begin()
        token = _CURRENT_EXCHANGE.set(exchange)
    except Exception as exc:  # noqa: BLE001 - never break the request
        containment.record("flask request start", exc)
        return wrapped(*args, **kwargs)
    try:
        response = wrapped(*args, **kwargs)
    except AuditUnavailable:  # fail-closed refused a statement before it changed anything
        try:
            exchange.finish(503)
        except AuditUnavailable:
            pass
        return _unavailable(instance)
    except BaseException as error:
        try:
            exchange.finish(500, error)
        except AuditUnavailable:  # the app's own error is what the client gets
            pass
        raise
    finally:
        _CURRENT_EXCHANGE.reset(token)
    try:
        _response_facts(exchange, response, _session_of(ctx), session_before)
    except Exception as exc:  # noqa: BLE001
        containment.record("flask response", exc)
    try:
        exchange.finish(response.status_code)
    except AuditUnavailable:  # fail-closed: the record of what the view did is not durable
        return _unavailable(instance)
    return response


def _unavailable(app: flask.Flask) -> Any:
    return app.response_class("audit unavailable\n", status=503, mimetype="text/plain", headers={"Retry-After": "5"})


def _dispatch_request(wrapped: Any, instance: flask.Flask, args: Any, kwargs: Any) -> Any:
    """Runs after before_request handlers, just before the view: the ``before_view`` stage."""
    exchange = _CURRENT_EXCHANGE.get()
    if exchange is not None:
        try:
            exchange.before_view()
        except AuditUnavailable:  # fail-closed and the audit record could not be made durable
            return _unavailable(instance)
    return wrapped(*args, **kwargs)


def _login_signal(action: str):
    def receiver(sender: Any, user: Any = None, **extra: Any) -> None:
        try:
            from otel_audit.actors import actor_from_user

            scope = current_scope()
            actor = actor_from_user(user, "flask_login") if user is not None else None
            if actor is None and scope is not None:
                actor = scope.actor
            note_signal(
                AuditEvent(
                    category="authentication",
                    action=action,
                    outcome="success",
                    actor=actor or Actor(),
                    source=scope.source if scope else Source(),
                    http=scope.http if scope else None,
                    origin="flask_login",
                )
            )
        except Exception as exc:  # noqa: BLE001
            containment.record("flask-login signal", exc)

    return receiver


_LOGIN_RECEIVERS = {"user_logged_in": _login_signal("login"), "user_logged_out": _login_signal("logout")}


class FlaskAuditInstrumentor(BaseInstrumentor):
    """Audits every Flask request and Flask-Login login/logout."""

    _hooks: list[Patch] = []

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("flask >= 2.2",)

    def _instrument(self, **kwargs: Any) -> None:
        # ``flask.Flask`` as it is now (contrib tracing may have swapped in its subclass); the
        # hooks remember that class and are removed from it.
        hooks = [Patch(flask.Flask, "full_dispatch_request", _full_dispatch_request),
                 Patch(flask.Flask, "dispatch_request", _dispatch_request)]
        for hook in hooks:
            hook.install()
        FlaskAuditInstrumentor._hooks = hooks
        try:
            import flask_login.signals as signals
        except ImportError:
            return
        for name, receiver in _LOGIN_RECEIVERS.items():
            getattr(signals, name).connect(receiver, weak=False)

    def _uninstrument(self, **kwargs: Any) -> None:
        for hook in reversed(FlaskAuditInstrumentor._hooks):
            hook.remove()
        FlaskAuditInstrumentor._hooks = []
        try:
            import flask_login.signals as signals
        except ImportError:
            return
        for name, receiver in _LOGIN_RECEIVERS.items():
            getattr(signals, name).disconnect(receiver)
