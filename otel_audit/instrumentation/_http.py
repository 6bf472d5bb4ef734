"""HTTP semantics shared by every web adapter: outcome from status, the request scope, and the
two stages of a request (before the view: fail-closed check; after the response: the record)."""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

from otel_audit.actors import ActorFacts, ActorResolver
from otel_audit.attributes import LEVEL_RANK
from otel_audit.config import setting
from otel_audit.context import RequestScope, enter_scope, exit_scope
from otel_audit.errors import AuditUnavailable, ConfigError, containment
from otel_audit.event import Actor, AuditEvent, HttpInfo, Source
from otel_audit.outcome import outcome_for_status
from otel_audit.recording import close_request
from otel_audit.runtime import admit_request, get_runtime


def actor_resolver() -> ActorResolver:
    """The resolver from the policy (``actors.sources``) or the default order, with the app's own
    resolver (``OTEL_AUDIT_ACTOR_RESOLVER=pkg.module:func``, read at start-up with the runtime's
    other settings) consulted first when set. Built once per runtime and policy."""
    global _resolver_for
    runtime = get_runtime()
    if runtime is not None:
        policy = runtime.policy
        cached = _resolver_for
        if cached[0] is runtime and cached[1] is policy:
            return cached[2]
        resolver = _build_resolver(policy, (runtime.config.actor_resolver or "").strip())
        _resolver_for = (runtime, policy, resolver)
        return resolver
    return _build_resolver(None, (setting(ACTOR_RESOLVER_ENV) or "").strip())


def _build_resolver(policy: Any, dotted: str) -> ActorResolver:
    resolver = getattr(policy, "actor_resolver", None)
    base = resolver if resolver is not None else _DEFAULT_RESOLVER
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
_resolver_for: tuple[Any, Any, Any] = (None, None, None)  # (runtime, policy, resolver)


# ---------------------------------------------------------------------------------------------
# What to capture: payloads only when the policy can export them


#: Detail levels by rank (``attributes.LEVELS``): payloads appear from ``request`` (2) on,
#: response bodies and bound SQL parameters only at ``full`` (3).
REQUEST_RANK, FULL_RANK = 2, 3
_rank_for: tuple[Any, int] = (None, FULL_RANK)  # (policy, highest level any rule or default selects)


def payload_rank() -> int:
    """The highest detail level the running policy can give any event (0..3; 3 when unknown).

    Adapters skip building what no record could carry: a JSON response body is parsed, and SQL
    parameters converted, only when some rule (or the default) audits at ``full``. Facts the
    policy itself reads (status, redirect, response headers, session change, the request body of
    a login) are captured whatever the level.
    """
    global _rank_for
    runtime = get_runtime()
    policy = runtime.policy if runtime is not None else None
    cached = _rank_for
    if cached[0] is policy and policy is not None:
        return cached[1]
    rank = _highest_rank(policy)
    _rank_for = (policy, rank)
    return rank


def _highest_rank(policy: Any) -> int:
    try:
        default = policy.model.defaults.level
        levels = {default}
        for compiled in policy.rules:
            level = compiled.rule.level
            levels.add(level if level else (default if default != "none" else "metadata"))
        return max(LEVEL_RANK[level] for level in levels)
    except Exception:  # noqa: BLE001 - no policy, or one shaped differently: capture everything
        return FULL_RANK


class LazyHeaders(Mapping[str, str]):
    """A header mapping built on first use from ``build(source)``.

    Header dicts are payload: only exported at ``request``/``full`` level, and read by the policy
    only for routes whose conditions name a response header. Most records need neither, so the
    copy is made only when something reads it (during the same request's pipeline). A failing
    build is contained and reads as no headers.
    """

    __slots__ = ("_build", "_source", "_data", "_where")

    def __init__(self, build: Callable[[Any], dict[str, str]], source: Any, where: str) -> None:
        self._build = build
        self._source = source
        self._where = where
        self._data: dict[str, str] | None = None

    def _dict(self) -> dict[str, str]:
        data = self._data
        if data is None:
            try:
                data = self._build(self._source)
            except Exception as exc:  # noqa: BLE001
                containment.record(self._where, exc)
                data = {}
            self._data = data
            self._build = self._source = None
        return data

    def __getitem__(self, key: str) -> str:
        return self._dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._dict()

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def items(self) -> Any:
        return self._dict().items()

    def keys(self) -> Any:
        return self._dict().keys()

    def values(self) -> Any:
        return self._dict().values()

    def __eq__(self, other: object) -> bool:
        return self._dict() == (other._dict() if isinstance(other, LazyHeaders) else other)

    def __repr__(self) -> str:
        return repr(self._dict())


#: Responses up to this size are looked at for an issued token (``access_token``/``id_token``).
TOKEN_RESPONSE_LIMIT = 16 * 1024
_TOKEN_MARKERS = (b'access_token"', b'id_token"')


def issued_token(method: str | None, status: int | None, body: bytes | None) -> Any:
    """The parsed JSON of a successful POST answer that carries a token (an OAuth2 password-flow
    login answers ``{"access_token": "<JWT>", ...}``): the login record names its principal from
    it. Never exported; a cheap byte search first, so ordinary responses are not parsed."""
    if method != "POST" or status is None or not 200 <= status < 300 or not body or len(body) > TOKEN_RESPONSE_LIMIT:
        return None
    if not any(marker in body for marker in _TOKEN_MARKERS):
        return None
    try:
        import json

        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def header_items(headers: Any) -> dict[str, str]:
    """``dict(headers.items())`` (werkzeug, Django): the eager copy, as a LazyHeaders builder."""
    return dict(headers.items())


# ---------------------------------------------------------------------------------------------


class HttpExchange:
    """One request as seen by an adapter. Call :meth:`begin`, then :meth:`finish` exactly once."""

    __slots__ = ("facts", "http", "source", "scope", "_token", "actor_before", "category", "_resolved", "_identity",
                 "_resolving")

    def __init__(self, facts: ActorFacts, http: HttpInfo, source: Source) -> None:
        self.facts = facts
        self.http = http
        self.source = source
        self.scope = RequestScope(Actor(), source, http)
        self._token: Any = None
        self.actor_before: Actor | None = None
        self.category = "http"  # adapters set "admin" for requests to an admin site
        self._resolved = False
        self._identity: Any = None  # the facts' identity objects at the last resolution, when they vouch
        self._resolving = False  # a resolution is running (it may run SQL that asks for the actor again)

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
        """Resolve the actor from the facts as they are now (``g.user``, session, token).

        Re-entrant calls return at once: loading Django's lazy ``request.user`` runs the session
        and user queries, whose facts ask for the actor again - resolving it then would load both
        a second time."""
        if self._resolving:
            return
        self._resolving = True
        try:
            resolver = actor_resolver()
            facts = self.facts
            # Our reads of the session are not the app's: left marked, the framework would answer
            # ``Vary: Cookie`` on pages that never read it (and shared caches would stop caching them).
            unread = getattr(facts, "keep_session_unread", None)
            restore = unread() if unread is not None else None
            self.scope.actor = resolver.resolve(facts)
            if restore is not None:
                restore()
            self._resolved = True
            identity_facts = getattr(facts, "identity_facts", None)
            self._identity = identity_facts() if identity_facts is not None and not resolver.reads_app_code else None
        except Exception as exc:  # noqa: BLE001
            containment.record("actor resolution", exc)
        finally:
            self._resolving = False

    def _identity_unchanged(self) -> bool:
        """Whether the facts vouch that nothing the actor was resolved from has changed since (no
        session to change, the same user objects, no app resolver reading who knows what)."""
        before = self._identity
        if before is None:
            return False
        now = self.facts.identity_facts()  # type: ignore[attr-defined]
        return now is not None and len(now) == len(before) and all(a is b for a, b in zip(now, before))

    def finish(self, status: int | None, error: BaseException | None = None) -> bool:
        """Close the action (after the response is known): its one record, then the scope.

        Returns False when the record could not be written; raises
        :class:`~otel_audit.errors.AuditUnavailable` when fail-closed requires it (the adapter
        answers 503 where the response has not been sent)."""
        try:
            http = self.http
            http.status_code = status
            if error is not None:
                outcome, reason = "failure", "unhandled exception"
                error_type = f"{type(error).__module__}.{type(error).__qualname__}".removeprefix("builtins.")
            else:
                outcome, reason = outcome_for_status(status)
                error_type = None
            if not self._resolved or (http.session_changed is not False and not self._identity_unchanged()):
                self.refresh_actor()  # first chance (view never ran), or login/logout changed who it is
            actor = self.scope.actor
            before = self.actor_before
            if not actor.id and before is not None and before.id:
                actor = before  # e.g. logout: who it was before the session ended
            return close_request(
                self.scope,
                AuditEvent(
                    category=self.category,
                    action="request",
                    outcome=outcome,
                    outcome_reason=reason,
                    actor=actor,
                    source=self.source,
                    http=http,
                    error_type=error_type,
                    attributes={"audit.actor.before": before.id if before else None},
                    origin=getattr(self.facts, "origin", "http"),
                    event_id=self.scope.event_id,  # the action's id, fixed when it began (its intent's)
                ),
            )
        except AuditUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001
            containment.record("http finish", exc)
            return False
        finally:
            if self._token is not None:
                exit_scope(self._token)
                self._token = None
