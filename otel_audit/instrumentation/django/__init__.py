"""Django adapter: each request is one action; logins, model changes and group/permission
grants are facts of it (one record per request, see docs/adapters.md).

* Requests: ``BaseHandler.load_middleware`` is wrapped so every handler (WSGI, ASGI, test client)
  gets our wrapper around its whole middleware chain — outermost, without touching
  ``settings.MIDDLEWARE`` — and ``_get_response`` (after all middleware ran, before the view) is the
  ``before_view`` stage where ``request.user`` is known. Unhandled exceptions arrive through
  ``got_request_exception``. Requests to the admin site are category ``admin``.
* Auth signals: ``user_logged_in`` / ``user_logged_out`` / ``user_login_failed`` (the attempted
  username only — Django passes cleansed credentials and we take just the username field).
* Models: ``post_init`` keeps a snapshot of loaded field values (no extra query), ``pre_save``
  compares it to find the changed field names, ``post_save`` / ``post_delete`` hand them to the
  action with the model label and primary key (values only at ``full`` level, redacted); they take
  over the SQL statement's entry of the same row. The user model gets account-management actions
  (password change, enable/disable), and flips of ``is_superuser`` / ``is_staff`` are role
  grants/revocations, as are ``m2m_changed`` on the user's groups and permissions. Bookkeeping
  rows (sessions, admin ``LogEntry``, migrations) are not changes of the action. Outside a request,
  ``pre_save``/``pre_delete`` hold the transaction's record open until the row's ``post_`` signal,
  so one autocommit save is one record.
"""

from __future__ import annotations

import json
import re
import sys
import weakref
from typing import Any, Collection, Mapping

from django.conf import settings
from django.contrib.auth import signals as auth_signals
from django.core import signals as core_signals
from django.core.handlers.base import BaseHandler
from django.db.models import signals as model_signals
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_audit.actors import actor_from_user
from otel_audit.context import current_scope
from otel_audit.errors import AuditUnavailable, containment
from otel_audit.event import Actor, AuditEvent, Change, HttpInfo, Source, Target
from otel_audit.instrumentation._http import (FULL_RANK, HttpExchange, LazyHeaders, header_items, issued_token,
                                              payload_rank)
from otel_audit.instrumentation._patch import Patch
from otel_audit.instrumentation._request import current_exchange, reset_exchange, scope_and_actor, set_exchange
from otel_audit.recording import discard_change, hold, note_signal, record_change, release

PAYLOAD_LIMIT = 64 * 1024
#: Models whose rows are framework bookkeeping, not user data (kept as data; lower-case labels).
IGNORED_MODELS = frozenset({"sessions.session", "migrations.migration", "contenttypes.contenttype"})
#: Fields whose values never go into ``changes`` (the name is still listed as changed).
SECRET_FIELD = re.compile(r"pass(word|wd)?|secret|token|api_?key|otp", re.I)
#: Boolean user flags whose flips are role grants (flag -> role name).
ROLE_FLAGS = {"is_superuser": "superuser", "is_staff": "staff"}

_UNPREFIXED = ("content-type", "content-length")
_SNAPSHOT = "_otel_audit_loaded"
_PENDING = "_otel_audit_pending"



def _current() -> HttpExchange | None:
    """This request's Django exchange (registered with :func:`set_exchange`), or None."""
    exchange = current_exchange()
    return exchange if exchange is not None and type(exchange.facts) is _DjangoFacts else None


_handlers: "weakref.WeakKeyDictionary[BaseHandler, Any]" = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------------------------
# Requests


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
        return _attr(self.request, "user")

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
    return HttpInfo(
        method=request.method,
        path=request.path,
        scheme=request.scheme,
        host=meta.get("HTTP_HOST") or meta.get("SERVER_NAME"),
        query=meta.get("QUERY_STRING") or None,
        request_headers=LazyHeaders(_request_headers, request, "django request headers"),  # type: ignore[arg-type]
    )


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
        started = _start(request) if _ENABLED else None
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
        started = _start(request) if _ENABLED else None
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
    exchange = _current()
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
    exchange = _current()
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
    exchange = _current()
    if exchange is not None:
        exchange.facts.error = sys.exc_info()[1]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Auth signals: facts of the request's action (a record of their own outside a request)


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


# ---------------------------------------------------------------------------------------------
# Model signals: row-level changes of the action (they take over the SQL statement's entry)

_attnames: dict[type, tuple[str, ...]] = {}


def _fields_of(model: type) -> tuple[str, ...]:
    names = _attnames.get(model)
    if names is None:
        names = tuple(field.attname for field in model._meta.concrete_fields)  # noqa: SLF001
        _attnames[model] = names
    return names


def _label(model: type) -> str:
    return model._meta.label_lower  # noqa: SLF001


def _table(model: type) -> str:
    return model._meta.db_table  # noqa: SLF001


_ignored: dict[type, bool] = {}


def _is_ignored(model: type) -> bool:
    """Whether ``model`` is framework bookkeeping (:data:`IGNORED_MODELS`); cached per class."""
    ignored = _ignored.get(model)
    if ignored is None:
        ignored = _ignored[model] = _label(model) in IGNORED_MODELS
    return ignored


_secret_fields: dict[str, bool] = {}


def _is_secret(name: str) -> bool:
    """Whether a field's values stay out of ``values`` (:data:`SECRET_FIELD`); once per name."""
    secret = _secret_fields.get(name)
    if secret is None:
        if len(_secret_fields) >= 4096:
            _secret_fields.clear()
        secret = _secret_fields[name] = SECRET_FIELD.search(name) is not None
    return secret


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _snapshot(instance: Any) -> dict[str, Any]:
    values = instance.__dict__
    return {name: values[name] for name in _fields_of(type(instance)) if name in values}


def _in_atomic_block(using: Any) -> bool:
    """Whether the connection is inside ``transaction.atomic`` (else: autocommit, one statement
    one transaction)."""
    try:
        from django.db import connections

        return bool(connections[using or "default"].in_atomic_block)
    except Exception:  # noqa: BLE001
        return False


def _post_init(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    try:
        if not _is_ignored(sender):
            instance.__dict__[_SNAPSHOT] = _snapshot(instance)
    except Exception as exc:  # noqa: BLE001
        containment.record("django post_init", exc)


def _pre_save(sender: Any, instance: Any = None, raw: bool = False, update_fields: Any = None, **kwargs: Any) -> None:
    try:
        if raw:
            return
        hold()  # outside a request: the save's statements and its row are one record
        if _is_ignored(sender):
            return
        current = _snapshot(instance)
        pk_name = sender._meta.pk.attname  # noqa: SLF001
        if instance._state.adding:  # noqa: SLF001
            changed = {name: (None, value) for name, value in current.items() if name != pk_name}
        else:
            loaded = instance.__dict__.get(_SNAPSHOT, {})
            changed = {name: (loaded.get(name), value) for name, value in current.items()
                       if name != pk_name and (name not in loaded or loaded[name] != value)}
        if update_fields is not None:
            wanted = {sender._meta.get_field(name).attname for name in update_fields}  # noqa: SLF001
            changed = {name: change for name, change in changed.items() if name in wanted}
        instance.__dict__[_PENDING] = changed
    except Exception as exc:  # noqa: BLE001
        containment.record("django pre_save", exc)


def _pre_delete(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    try:
        hold()
    except Exception as exc:  # noqa: BLE001
        containment.record("django pre_delete", exc)


def _model_change(category: str, action: str, instance: Any, changed: Mapping[str, Any] | None, operation: str,
                  table: str | None = None, **attributes: Any) -> None:
    """Hand one row's change to the action, with its model label, primary key and changed fields
    (``table``: where its statement wrote, when not the model's own table)."""
    model = type(instance)
    change = Change(
        category=category,
        action=action,
        table=table or _table(model),
        type=_label(model),
        id=str(instance.pk) if instance.pk is not None else None,
        operation=operation,
        fields=tuple(changed) if changed else None,
        origin="django.orm",
        orm=True,
    )
    if changed:
        change.values = {name: ({} if _is_secret(name) else {"old": _plain(old), "new": _plain(new)})
                         for name, (old, new) in changed.items()}
    extra = {k.replace("__", "."): v for k, v in attributes.items()}
    exchange = _current()
    if exchange is not None and exchange.category == "admin":
        extra["audit.via"] = "admin"
    change.attributes = extra or None
    scope, actor = scope_and_actor()
    fact = AuditEvent(
        category=category,
        action=action,
        outcome="success",
        actor=actor,
        source=scope.source if scope is not None else Source(),
        http=scope.http if scope is not None and scope.kind == "request" else None,
        target=Target(type=change.type, id=change.id),
        changed_fields=change.fields,
        changes=[change],
        attributes=dict(extra),
        origin="django.orm",
    )
    record_change(fact, change, None)


_user_model: tuple[Any, Any] = (None, None)  # (settings.AUTH_USER_MODEL, the model it named)


def _is_user_model(model: type) -> bool:
    """``model is get_user_model()``, looked up once per ``AUTH_USER_MODEL`` value."""
    global _user_model
    name = settings.AUTH_USER_MODEL
    cached = _user_model
    if cached[0] != name or cached[1] is None:
        from django.contrib.auth import get_user_model

        cached = _user_model = (name, get_user_model())
    return model is cached[1]


def _user_change(instance: Any, created: bool, changed: Mapping[str, Any]) -> None:
    """One change per saved user row, named by the most telling thing that changed: a role flag
    (``is_superuser``/``is_staff``), the password, ``is_active``, else an account update."""
    operation = "INSERT" if created else "UPDATE"
    if created:
        _model_change("account_management", "create_user", instance, changed, operation)
        return
    for flag, role in ROLE_FLAGS.items():
        if flag in changed and bool(changed[flag][0]) != bool(changed[flag][1]):
            action = "grant_role" if changed[flag][1] else "revoke_role"
            _model_change("authorization", action, instance, changed, operation, audit__role__names=[role])
            return
    if "password" in changed:
        _model_change("account_management", "password_change", instance, changed, operation)
    elif "is_active" in changed:
        action = "enable_user" if changed["is_active"][1] else "disable_user"
        _model_change("account_management", action, instance, changed, operation)
    else:
        _model_change("account_management", "update_user", instance, changed, operation)


def _post_save(sender: Any, instance: Any = None, created: bool = False, raw: bool = False, using: Any = None,
               **kwargs: Any) -> None:
    if raw:
        return
    try:
        label = _label(sender)
        changed = instance.__dict__.pop(_PENDING, {})
        instance.__dict__[_SNAPSHOT] = _snapshot(instance)
        if label == "admin.logentry" or _is_ignored(sender):
            discard_change(_table(sender), "INSERT" if created else "UPDATE")  # bookkeeping, not the action
        elif _is_user_model(sender):
            _user_change(instance, created, changed)
        elif created:
            _model_change("data_modification", "create_resource", instance, changed, "INSERT")
        elif changed:
            _model_change("data_modification", "update_resource", instance, changed, "UPDATE")
        else:
            discard_change(_table(sender), "UPDATE")  # saved without a change
    except Exception as exc:  # noqa: BLE001
        containment.record("django post_save", exc)
    finally:
        release(_in_atomic_block(using))


def _post_delete(sender: Any, instance: Any = None, using: Any = None, **kwargs: Any) -> None:
    try:
        if _is_ignored(sender):
            discard_change(_table(sender), "DELETE")
        elif _is_user_model(sender):
            _model_change("account_management", "delete_user", instance, None, "DELETE")
        else:
            _model_change("data_modification", "delete_resource", instance, None, "DELETE")
    except Exception as exc:  # noqa: BLE001
        containment.record("django post_delete", exc)
    finally:
        release(_in_atomic_block(using))


def _role_names(model: type, pks: Any) -> list[str]:
    label = _label(model)
    if label == "auth.group":
        return sorted(model._default_manager.filter(pk__in=pks).values_list("name", flat=True))  # noqa: SLF001
    if label == "auth.permission":
        rows = model._default_manager.filter(pk__in=pks).values_list("content_type__app_label", "codename")  # noqa: SLF001
        return sorted(f"{app}.{codename}" for app, codename in rows)
    return [str(pk) for pk in pks]


def _m2m_changed(sender: Any, instance: Any = None, action: str = "", reverse: bool = False, model: Any = None,
                 pk_set: Any = None, **kwargs: Any) -> None:
    """User <-> Group / Permission membership: a role grant or revocation per user (it takes over
    the statement on the membership table)."""
    try:
        if action not in ("post_add", "post_remove", "pre_clear"):
            return
        user_side = _is_user_model(type(instance))
        role_model = model if user_side else type(instance)
        if _label(role_model) not in ("auth.group", "auth.permission") or not (user_side or _is_user_model(model)):
            return
        if action == "pre_clear":  # post_clear has no pk_set: capture what is about to go
            pk_set = _related_pks(sender, instance, model)
        if not pk_set:
            return
        grant = action == "post_add"
        kind = "groups" if _label(role_model) == "auth.group" else "permissions"
        if user_side:
            users, roles = [instance], _role_names(role_model, pk_set)
        else:
            users = list(model._default_manager.filter(pk__in=pk_set))  # noqa: SLF001
            roles = _role_names(role_model, [instance.pk])
        for user in users:
            _model_change("authorization", "grant_role" if grant else "revoke_role", user, None,
                          "INSERT" if grant else "DELETE", table=sender._meta.db_table,  # noqa: SLF001
                          audit__role__names=roles, audit__role__kind=kind)
    except Exception as exc:  # noqa: BLE001
        containment.record("django m2m_changed", exc)


def _related_pks(through: Any, instance: Any, other_model: Any) -> set[Any]:
    """Primary keys of ``other_model`` rows linked to ``instance`` through the ``through`` table."""
    own = next(f for f in through._meta.fields if f.related_model is type(instance))  # noqa: SLF001
    other = next(f for f in through._meta.fields if f.related_model is other_model)  # noqa: SLF001
    rows = through._default_manager.filter(**{own.attname: instance.pk})  # noqa: SLF001
    return set(rows.values_list(other.attname, flat=True))


# ---------------------------------------------------------------------------------------------

_SIGNALS = (
    (core_signals.got_request_exception, _got_request_exception),
    (auth_signals.user_logged_in, _logged_in),
    (auth_signals.user_logged_out, _logged_out),
    (auth_signals.user_login_failed, _login_failed),
    (model_signals.post_init, _post_init),
    (model_signals.pre_save, _pre_save),
    (model_signals.post_save, _post_save),
    (model_signals.pre_delete, _pre_delete),
    (model_signals.post_delete, _post_delete),
    (model_signals.m2m_changed, _m2m_changed),
)
_DISPATCH_UID = "otel_audit"
#: Every request passes ``_get_response``: a plain-function hook (``_patch.py``), not a wrapt proxy.
_PATCHES = (Patch(BaseHandler, "load_middleware", _load_middleware),
            Patch(BaseHandler, "_get_response", _get_response),
            Patch(BaseHandler, "_get_response_async", _get_response_async))
_ENABLED = False


class DjangoAuditInstrumentor(BaseInstrumentor):
    """Audits Django requests, auth signals, model changes, role grants and admin actions."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("django >= 4.2",)

    def _instrument(self, **kwargs: Any) -> None:
        global _ENABLED
        _ENABLED = True
        for patch in _PATCHES:
            patch.install()
        for signal, receiver in _SIGNALS:
            signal.connect(receiver, weak=False, dispatch_uid=f"{_DISPATCH_UID}.{receiver.__name__}")

    def _uninstrument(self, **kwargs: Any) -> None:
        global _ENABLED
        _ENABLED = False
        for patch in reversed(_PATCHES):
            patch.remove()
        for signal, receiver in _SIGNALS:
            signal.disconnect(receiver, dispatch_uid=f"{_DISPATCH_UID}.{receiver.__name__}")
        for handler, chain in list(_handlers.items()):
            handler._middleware_chain = chain  # noqa: SLF001
        _handlers.clear()

