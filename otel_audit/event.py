"""The one audit event model every adapter produces and the pipeline consumes.

Adapters translate framework facts into an :class:`AuditEvent`; nothing downstream knows which
framework it came from. The fields answer the auditor's questions: who (``actor``), did what
(``category``/``action``), to what (``target``), when (``time_unix_nano``), from where (``source``),
with what outcome (``outcome``/``outcome_reason``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from otel_audit.ids import new_event_id

#: Categories an event can belong to (``audit.category``).
CATEGORIES = (
    "authentication",
    "authorization",
    "account_management",
    "data_access",
    "data_modification",
    "configuration",
    "admin",
    "http",
    "audit_system",
)

#: Outcomes (``audit.outcome``). ``denied`` means the request was understood and refused (403);
#: ``failure`` means it was attempted and did not succeed (bad password, 500).
OUTCOMES = ("success", "failure", "denied", "unknown")


@dataclass(slots=True)
class Actor:
    """Who acted. ``source`` records where the identity came from (session, jwt, header, ...)."""

    id: str | None = None
    name: str | None = None
    roles: tuple[str, ...] = ()
    type: str | None = None  # user | service | anonymous | system
    session_id: str | None = None
    source: str | None = None
    verified: bool | None = None  # False for identities read from unverified tokens


@dataclass(slots=True)
class Source:
    """Where the action came from."""

    address: str | None = None
    port: int | None = None
    user_agent: str | None = None


@dataclass(slots=True)
class Target:
    """What the action was done to."""

    type: str | None = None
    id: str | None = None
    name: str | None = None


@dataclass(slots=True)
class HttpInfo:
    """The HTTP exchange an event belongs to.

    Response facts (status, redirect location, headers, session change) are what the policy's route
    classification uses to decide outcomes: many apps answer a failed login with 200 and the form.
    Payload fields (``query``, ``request_headers``, ``request_body``, ``response_body``) are only
    exported at ``request``/``full`` level and always pass through redaction first.

    Adapters build it as ``HttpInfo(method, route, path)`` and set the rest: a class call with
    keywords packs them into a dict first (~0.6 µs a request on CPython 3.11).
    """

    method: str | None = None
    route: str | None = None
    path: str | None = None
    status_code: int | None = None
    scheme: str | None = None
    host: str | None = None
    query: str | None = None
    request_headers: dict[str, str] | None = None
    request_body: Any = None
    response_headers: dict[str, str] | None = None
    response_body: Any = None
    redirect_location: str | None = None
    session_changed: bool | None = None
    issued_token: Any = None  # a login/token response's parsed JSON when it holds a token: read, never exported


@dataclass(slots=True)
class DbInfo:
    """A database statement an event belongs to."""

    system: str | None = None  # db.system.name: sqlite, postgresql, ...
    namespace: str | None = None  # database name
    collection: str | None = None  # table
    operation: str | None = None  # SELECT, INSERT, UPDATE, DELETE, CREATE, ...
    query_text: str | None = None  # raw; sanitised by redaction before export
    parameters: Any = None  # only exported at ``full`` level, redacted
    row_count: int | None = None


@dataclass(slots=True)
class Change:
    """One row or statement an action touched (an ``audit.changes`` entry).

    ``orm`` entries come from an ORM (they know the resource type, id and changed fields); the
    others from the SQL statement (table, rows affected). ``values`` (field -> {"old", "new"})
    only leaves the process at ``full`` level, redacted like every value.
    """

    category: str  # data_modification, data_access, account_management, authorization, configuration
    action: str  # create_resource, update_resource, delete_resource, read_resource, grant_role, ...
    table: str | None = None  # db table
    type: str | None = None  # resource type: the ORM's model label, else the table
    id: str | None = None
    operation: str | None = None  # SQL verb: INSERT, UPDATE, DELETE, SELECT, ...
    fields: tuple[str, ...] | None = None
    rows: int | None = None
    values: dict[str, Any] | None = None
    attributes: dict[str, Any] | None = None  # e.g. audit.role.names of a grant
    system: str | None = None
    namespace: str | None = None
    error: str | None = None  # error.type of a statement that failed
    origin: str = ""  # the adapter that saw it
    orm: bool = False
    account: bool = False  # the adapter knows the row is the app's user model (Django's AUTH_USER_MODEL)
    statements: int = 1  # statement-level entries merged into this one


@dataclass(slots=True)
class AuditEvent:
    """One auditable fact.

    ``decision`` and ``record`` are filled by the pipeline (decide, then enrich); adapters leave
    them alone.
    """

    category: str
    action: str
    outcome: str = "unknown"
    outcome_reason: str | None = None
    actor: Actor = field(default_factory=Actor)
    source: Source = field(default_factory=Source)
    target: Target | None = None
    http: HttpInfo | None = None
    db: DbInfo | None = None
    error_type: str | None = None
    message: str | None = None
    changed_fields: tuple[str, ...] | None = None
    changes: list[Change] | None = None  # what the action touched (``audit.changes``)
    changes_dropped: int = 0  # changes past the cap, counted only
    signal: "AuditEvent | None" = None  # an auth adapter's signal folded into this action
    attributes: dict[str, Any] = field(default_factory=dict)
    origin: str = "manual"  # which adapter produced it: flask, django, sqlalchemy, manual, ...
    event_id: str = field(default_factory=new_event_id)
    time_unix_nano: int = field(default_factory=time.time_ns)
    # --- filled by the pipeline ---
    decision: Any = None
    record: Any = None

    @property
    def event_name(self) -> str:
        return f"audit.{self.category}.{self.action}"
