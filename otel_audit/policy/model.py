"""The normalised policy: plain frozen dataclasses, whatever shape the document used.

``rules`` and the seed's ``audit_configs`` shorthand both become :class:`Rule`; ``request:
"POST /login"`` becomes methods + paths; single values become tuples. The canonical form of the
finished :class:`PolicyModel` is what ``audit.policy.hash`` is computed over, so two documents that
mean the same thing hash the same.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from otel_audit.local_time import DEFAULT_CATEGORIES as DEFAULT_LOCAL_TIME_CATEGORIES
from otel_audit.local_time import DEFAULT_ZONE

ADMIN = "@admin"  # placeholder in Match.actor_roles for "the policy's admin roles"
DEFAULT_ADMIN_ROLES = ("admin", "superuser", "administrator", "root")
DEFAULT_USERNAME_FIELDS = ("username", "email", "login", "user", "user_name")
# What makes a row change an account or privilege change (otel_audit/identity.py), as data.
DEFAULT_USER_TABLES = ("user", "users", "auth_user", "auth.user", "app_user", "app_users", "*_user", "*_users",
                       "account", "accounts", "member", "members")
DEFAULT_PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "is_admin", "superuser", "admin", "role", "roles", "groups",
                            "permissions", "user_permissions", "scopes", "privileges")
DEFAULT_CREDENTIAL_FIELDS = ("password", "hashed_password", "password_hash", "passwd", "pwd_hash", "api_key",
                             "otp_secret", "totp_secret", "mfa_secret")


@dataclass(frozen=True)
class Match:
    """Conditions of a rule; all given ones must hold, an empty Match matches everything."""

    categories: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()  # globs
    methods: tuple[str, ...] = ()  # upper case
    paths: tuple[str, ...] = ()  # globs over route template and path
    resource_types: tuple[str, ...] = ()  # globs
    actor_ids: tuple[str, ...] = ()
    actor_roles: tuple[str, ...] = ()  # any of
    actor_not_roles: tuple[str, ...] = ()  # none of
    actor_authenticated: bool | None = None
    outcomes: tuple[str, ...] = ()
    status: tuple[tuple[int, int], ...] = ()  # inclusive ranges
    db_operations: tuple[str, ...] = ()  # upper case
    db_tables: tuple[str, ...] = ()  # globs

    def described(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in ((), None)}


@dataclass(frozen=True)
class Rule:
    id: str
    match: Match
    level: str | None  # None: the policy default level
    log_success: bool | None = None
    log_failure: bool | None = None
    required: bool | None = None
    attributes: tuple[tuple[str, Any], ...] = ()
    tags: tuple[str, ...] = ()
    granularity: str | None = None  # None: the default's


@dataclass(frozen=True)
class Condition:
    """An outcome condition on the response; all given parts must hold."""

    status: tuple[tuple[int, int], ...] = ()
    redirect: tuple[str, ...] = ()
    redirect_not: tuple[str, ...] = ()
    response_header: tuple[tuple[str, str], ...] = ()  # (lower-case name, glob)
    session_changed: bool | None = None
    actor_changed: bool | None = None


@dataclass(frozen=True)
class Route:
    """What an app route means: which category/action a request to it is, and how its outcome is decided."""

    id: str
    methods: tuple[str, ...]  # empty: any
    paths: tuple[str, ...]
    category: str
    action: str
    failure_action: str | None = None
    success_when: tuple[Condition, ...] = ()
    failure_when: tuple[Condition, ...] = ()
    attributes: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Defaults:
    level: str = "metadata"
    log_success: bool = True
    log_failure: bool = True
    required: bool = False
    attributes: tuple[tuple[str, Any], ...] = ()
    tags: tuple[str, ...] = ()
    granularity: str = "action"  # action | statement


@dataclass(frozen=True)
class ActorSettings:
    sources: tuple[str, ...] | None = None  # None: otel_audit.actors.DEFAULT_SOURCES
    admin_roles: tuple[str, ...] = DEFAULT_ADMIN_ROLES
    record_attempted_username: str = "hmac"  # hmac (default: a pseudonym) | plain | off
    username_fields: tuple[str, ...] = DEFAULT_USERNAME_FIELDS
    user_tables: tuple[str, ...] = DEFAULT_USER_TABLES  # globs: the app's user table or model
    privilege_fields: tuple[str, ...] = DEFAULT_PRIVILEGE_FIELDS
    credential_fields: tuple[str, ...] = DEFAULT_CREDENTIAL_FIELDS


@dataclass(frozen=True)
class LocalTimeSettings:
    """``local_time``: the zone of the records' ``audit.local_time.*`` and the categories carrying them."""

    zone: str = DEFAULT_ZONE
    categories: tuple[str, ...] = DEFAULT_LOCAL_TIME_CATEGORIES


@dataclass(frozen=True)
class CriticalRoute:
    """A ``critical.routes`` entry: methods (empty: any) and a path glob."""

    methods: tuple[str, ...]
    path: str
    text: str  # as written, for reports


@dataclass(frozen=True)
class Critical:
    """What ``otel-audit coverage`` requires an explicit rule for. Changes no record, so it is left
    out of the canonical form (and the hash)."""

    routes: tuple[CriticalRoute, ...] = ()
    tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyModel:
    id: str
    version: str
    description: str | None
    failure_mode: str  # open | closed
    defaults: Defaults
    redaction: Mapping[str, Any]
    required_fields: tuple[tuple[str, tuple[str, ...]], ...]
    actors: ActorSettings
    rules: tuple[Rule, ...]
    routes: tuple[Route, ...]
    local_time: LocalTimeSettings = field(default_factory=LocalTimeSettings)
    critical: Critical = field(default_factory=Critical)  # CI gate only: not in the hash
    sources: tuple[str, ...] = field(default=(), compare=False)  # documents it was built from
    notes: tuple[str, ...] = field(default=(), compare=False)  # what the loader rewrote (aliases), for validate

    def canonical(self) -> dict[str, Any]:
        """The normalised policy as plain JSON-able data (what the hash covers)."""
        data = asdict(self)
        data.pop("sources", None)
        data.pop("notes", None)
        data.pop("critical", None)
        if self.local_time == LocalTimeSettings():  # unset: a policy keeps the hash it had before the section existed
            data.pop("local_time")
        return data

    def canonical_json(self) -> str:
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), default=str)

    @property
    def hash(self) -> str:
        return "sha256:" + hashlib.sha256(self.canonical_json().encode()).hexdigest()
