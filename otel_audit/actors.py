"""Who is acting: resolve an :class:`Actor` from an ordered list of sources.

Adapters expose framework facts through :class:`ActorFacts`; the order of sources comes from the
policy (``actors.sources``) or the default below. Source names:

* ``framework_user``   - Django ``request.user``, Flask-Login ``current_user``, Starlette ``scope["user"]``
* ``app_user``         - ``flask.g.user`` / ``request.state.user`` (object attribute or mapping key)
* ``session:KEY``      - a key of the server-side session (e.g. ``session:user_id``)
* ``header:NAME``      - a header set by a trusted auth proxy (e.g. ``header:X-Forwarded-User``)
* ``jwt:CLAIM``        - a claim of a bearer JWT, decoded *without verification* for identification
                         only; the actor is marked ``verified=False``
* ``resolver:PKG.MOD:FUNC`` - a callable taking the facts object, returning an Actor, dict or id

The first source that yields an id wins; ``audit.actor.source`` records which one it was.
"""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Mapping
from typing import Any, Callable, Protocol, Sequence

from otel_audit.errors import containment
from otel_audit.event import Actor

DEFAULT_SOURCES = ("framework_user", "app_user", "session:user_id", "jwt:sub")
ADMIN_ROLES = ("admin", "superuser", "administrator", "root")


class ActorFacts(Protocol):
    def framework_user(self) -> Any: ...
    def app_user(self) -> Any: ...
    def session(self) -> Mapping[str, Any] | None: ...
    def header(self, name: str) -> str | None: ...


def _get(obj: Any, name: str) -> Any:
    if type(obj) is dict or isinstance(obj, Mapping):  # collections.abc's: typing's alias checks in Python
        return obj.get(name)
    try:
        return obj[name] if hasattr(obj, "keys") else getattr(obj, name, None)
    except (KeyError, IndexError, TypeError):
        return getattr(obj, name, None)


def actor_from_user(user: Any, source: str) -> Actor | None:
    """An Actor from a user object or mapping (Django user, Flask-Login user, sqlite3.Row, dict)."""
    if user is None:
        return None
    authenticated = getattr(user, "is_authenticated", True)
    if callable(authenticated):
        authenticated = authenticated()
    if authenticated is False:
        return None
    user_id = None
    get_id = getattr(user, "get_id", None)
    if callable(get_id) and not isinstance(user, Mapping):
        try:
            user_id = get_id()
        except Exception:  # noqa: BLE001 - Flask-Login raises NotImplementedError without an id
            user_id = None
    for key in ("id", "pk", "user_id", "sub"):
        if user_id is None:
            user_id = _get(user, key)
    if user_id is None:
        return None
    name = None
    for key in ("username", "name", "login", "email"):
        name = _get(user, key)
        if name:
            break
    roles: list[str] = []
    raw_roles = _get(user, "roles")
    if raw_roles is None:
        raw_roles = _get(user, "role")
    if isinstance(raw_roles, str):
        roles.extend(part.strip() for part in raw_roles.replace(";", ",").split(",") if part.strip())
    elif raw_roles is not None:
        try:
            roles.extend(str(getattr(role, "name", role)) for role in raw_roles)
        except TypeError:
            pass
    for flag, role in (("is_superuser", "superuser"), ("is_staff", "staff"), ("is_admin", "admin")):
        if _get(user, flag) is True and role not in roles:
            roles.append(role)
    return Actor(id=str(user_id), name=str(name) if name else None, roles=tuple(roles), type="user", source=source)


def decode_jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT, unverified. None unless it is a well-formed JWS with a JSON header."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        decoded = [json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in parts[:2]]
    except (ValueError, TypeError):
        return None
    header, payload = decoded
    if not isinstance(header, dict) or "alg" not in header or not isinstance(payload, dict):
        return None
    return payload


def _load_resolver(path: str) -> Callable[[Any], Any]:
    module_name, _, attr = path.partition(":")
    if not attr:
        module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


class ActorResolver:
    """Resolves actors from facts with a fixed source order (compiled once, used per request).

    Each source is compiled to one small function at construction, so a resolution is a loop of
    plain calls: an anonymous request costs a handful of attribute reads, no string dispatch.
    """

    def __init__(self, sources: Sequence[str] = DEFAULT_SOURCES) -> None:
        self.sources = tuple(sources)
        self._resolvers: dict[str, Callable[[Any], Any]] = {}
        self._parsed: list[tuple[str, str, str]] = []  # (source, kind, arg), split once
        for source in self.sources:
            kind, _, arg = source.partition(":")
            if kind not in ("framework_user", "app_user", "session", "header", "jwt", "resolver"):
                raise ValueError(f"unknown actor source {source!r}")
            if kind == "resolver":
                self._resolvers[source] = _load_resolver(arg)
            self._parsed.append((source, kind, arg))
        #: A ``resolver:`` source runs app code that may read anything: no fact can vouch that its
        #: answer is unchanged, so adapters re-resolve instead of reusing an earlier answer.
        self.reads_app_code = any(kind == "resolver" for _, kind, _ in self._parsed)
        self._steps: tuple[tuple[str, Callable[[Any], Actor | None]], ...] = tuple(
            (source, self._compile(source, kind, arg)) for source, kind, arg in self._parsed
        )

    def resolve(self, facts: ActorFacts) -> Actor:
        """The first source that yields an id wins; a source that raises (a user object whose DB
        session has closed, a resolver bug) is counted and skipped, not fatal to the others."""
        for source, step in self._steps:
            try:
                actor = step(facts)
            except Exception as exc:  # noqa: BLE001
                containment.record(f"actor source {source}", exc)
                continue
            if actor is not None and actor.id:
                return actor
        return Actor(type="anonymous")

    def _compile(self, source: str, kind: str, arg: str) -> Callable[[Any], Actor | None]:
        """One source as a function of the facts (what :meth:`_from_source` does, without the dispatch)."""
        if kind == "framework_user":
            def framework_user(facts: Any) -> Actor | None:
                user = facts.framework_user()
                return None if user is None else actor_from_user(user, source)

            return framework_user
        if kind == "app_user":
            def app_user(facts: Any) -> Actor | None:
                user = facts.app_user()
                return None if user is None else actor_from_user(user, source)

            return app_user
        if kind == "session":
            def session_key(facts: Any) -> Actor | None:
                session = facts.session()
                value = session.get(arg) if session else None
                return Actor(id=str(value), type="user", source=source) if value not in (None, "") else None

            return session_key
        if kind == "jwt":
            def jwt_claim(facts: Any) -> Actor | None:
                if not facts.header("authorization"):
                    return None
                return self._from_source(source, kind, arg, facts)

            return jwt_claim
        return lambda facts: self._from_source(source, kind, arg, facts)

    def _from_source(self, source: str, kind: str, arg: str, facts: ActorFacts) -> Actor | None:
        if kind == "framework_user":
            return actor_from_user(facts.framework_user(), source)
        if kind == "app_user":
            return actor_from_user(facts.app_user(), source)
        if kind == "session":
            session = facts.session()
            value = session.get(arg) if session else None
            return Actor(id=str(value), type="user", source=source) if value not in (None, "") else None
        if kind == "header":
            value = facts.header(arg)
            return Actor(id=value, type="user", source=source) if value else None
        if kind == "jwt":
            auth = facts.header("authorization") or ""
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token:
                return None
            claims = decode_jwt_claims(token.strip())
            if not claims or claims.get(arg) in (None, ""):
                return None
            roles = claims.get("roles") or claims.get("scope") or ()
            if isinstance(roles, str):
                roles = roles.split()
            return Actor(
                id=str(claims[arg]),
                name=claims.get("preferred_username") or claims.get("name"),
                roles=tuple(str(role) for role in roles),
                type="user",
                source=source,
                verified=False,
            )
        if kind == "resolver":
            result = self._resolvers[source](facts)
            if isinstance(result, Actor):
                result.source = result.source or source
                return result
            if isinstance(result, Mapping) or hasattr(result, "__dict__"):
                return actor_from_user(result, source)
            return Actor(id=str(result), type="user", source=source) if result else None
        return None
