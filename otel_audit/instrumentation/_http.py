"""HTTP semantics shared by every web adapter: outcome from status, the request scope, and the
two stages of a request (before the view: fail-closed check; after the response: the record)."""

from __future__ import annotations

import os
from typing import Any

from otel_audit.actors import ActorFacts, ActorResolver
from otel_audit.context import RequestScope, enter_scope, exit_scope
from otel_audit.errors import ConfigError, containment
from otel_audit.event import Actor, AuditEvent, HttpInfo, Source
from otel_audit.runtime import admit_request, get_runtime, record_event


def outcome_for_status(status: int | None) -> tuple[str, str | None]:
    """2xx/3xx success, 401 failure, 403 denied, other 4xx/5xx failure."""
    if status is None:
        return "unknown", None
    if status < 400:
        return "success", None
    if status == 401:
        return "failure", "unauthenticated"
    if status == 403:
        return "denied", "forbidden"
    return "failure", f"http {status}"


def actor_resolver() -> ActorResolver:
    """The resolver from the policy (``actors.sources``) or the default order, with the app's own
    resolver (``OTEL_AUDIT_ACTOR_RESOLVER=pkg.module:func``) consulted first when set."""
    runtime = get_runtime()
    policy = runtime.policy if runtime is not None else None
    resolver = getattr(policy, "actor_resolver", None)
    base = resolver if resolver is not None else _DEFAULT_RESOLVER
    dotted = os.environ.get(ACTOR_RESOLVER_ENV, "").strip()
    if not dotted:
        return base
    key = (id(base), dotted)
    cached = _WITH_ENV_RESOLVER.get(key)
    if cached is None:
        try:
            cached = ActorResolver((f"resolver:{dotted}", *base.sources))
        except Exception as exc:  # noqa: BLE001 - import errors, missing attribute
            raise ConfigError(
                f"{ACTOR_RESOLVER_ENV}: {dotted!r} is invalid: expected an importable 'package.module:function' "
                f"({type(exc).__name__})"
            ) from None
        _WITH_ENV_RESOLVER.clear()
        _WITH_ENV_RESOLVER[key] = cached
    return cached


ACTOR_RESOLVER_ENV = "OTEL_AUDIT_ACTOR_RESOLVER"
_DEFAULT_RESOLVER = ActorResolver()
_WITH_ENV_RESOLVER: dict[tuple[int, str], ActorResolver] = {}


class HttpExchange:
    """One request as seen by an adapter. Call :meth:`begin`, then :meth:`finish` exactly once."""

    __slots__ = ("facts", "http", "source", "scope", "_token", "actor_before", "category", "_resolved")

    def __init__(self, facts: ActorFacts, http: HttpInfo, source: Source) -> None:
        self.facts = facts
        self.http = http
        self.source = source
        self.scope = RequestScope(source=source, http=http)
        self._token: Any = None
        self.actor_before: Actor | None = None
        self.category = "http"  # adapters set "admin" for requests to an admin site
        self._resolved = False

    def begin(self) -> None:
        """Open the request scope. The actor is resolved in :meth:`before_view`, once the app's own
        auth has run (``g.user`` is usually set by a before_request handler)."""
        self._token = enter_scope(self.scope)

    def before_view(self) -> None:
        """Stage 1, ``RequestReceived``: the app's own auth has run, the view has not.

        Refreshes the actor (so DB and manual events in the view see it). Fail-closed checks belong
        here: raising :class:`~otel_audit.errors.AuditUnavailable` makes the adapter answer 503
        without running the view.
        """
        self.refresh_actor()
        self.actor_before = self.scope.actor
        admit_request()  # fail-closed: AuditUnavailable when the spool cannot take the record

    def refresh_actor(self) -> None:
        """Resolve the actor from the facts as they are now (``g.user``, session, token)."""
        try:
            self.scope.actor = actor_resolver().resolve(self.facts)
            self._resolved = True
        except Exception as exc:  # noqa: BLE001
            containment.record("actor resolution", exc)

    def finish(self, status: int | None, error: BaseException | None = None) -> None:
        """Record the request (after the response is known) and close the scope."""
        try:
            self.http.status_code = status
            outcome, reason = outcome_for_status(status)
            error_type = None
            if error is not None:
                outcome, reason = "failure", "unhandled exception"
                error_type = f"{type(error).__module__}.{type(error).__qualname__}".removeprefix("builtins.")
            if not self._resolved or self.http.session_changed is not False:
                self.refresh_actor()  # first chance (view never ran), or login/logout changed who it is
            actor = self.scope.actor
            if not actor.id and self.actor_before is not None and self.actor_before.id:
                actor = self.actor_before  # e.g. logout: who it was before the session ended
            event = AuditEvent(
                category=self.category,
                action="request",
                outcome=outcome,
                outcome_reason=reason,
                actor=actor,
                source=self.source,
                http=self.http,
                error_type=error_type,
                origin=getattr(self.facts, "origin", "http"),
            )
            event.attributes["audit.actor.before"] = self.actor_before.id if self.actor_before else None
            record_event(event)
        except Exception as exc:  # noqa: BLE001
            containment.record("http finish", exc)
        finally:
            if self._token is not None:
                exit_scope(self._token)
                self._token = None
