"""``otel-audit coverage``: which policy rule covers each route and table of an app (a CI gate).

Every route (method x path template) of a Flask app, a Starlette/FastAPI app or a Django project,
and every table of its SQLAlchemy or Django models (or, for raw SQL, of its database), becomes the
synthetic :class:`AuditEvent` the adapter would produce for it, once per kind of actor (an admin, a
signed-in user, an anonymous caller), and the compiled policy's own ``explain`` says which rule
decides and at what level - no matching is re-implemented here. What a framework routes is read by
the discovery module in its adapter package (``instrumentation/<framework>/routes.py``, ``tables.py``). The
policy's ``critical:`` section marks what must be covered by an explicit rule at a level other than
``none``, for every actor; the command exits 1 when something critical is not, and 2 when the app
cannot be seen whole (an unknown route object, a route count the framework disagrees with).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

from otel_audit.config import raw_setting
from otel_audit.event import Actor, AuditEvent, DbInfo, HttpInfo, Target

#: Row changes checked per table: (db operation, action of an ORM adapter, action of a SQL adapter).
TABLE_OPERATIONS = (("INSERT", "create_resource", "create_resource"), ("UPDATE", "update_resource", "update_resource"),
                    ("DELETE", "delete_resource", "delete_resource"))


class CoverageError(Exception):
    """The app could not be loaded or inspected; the message says what and where."""


@dataclass(frozen=True)
class AppRoute:
    method: str
    route: str  # the framework's template: /users/<int:id>, /users/{id}, users/<int:pk>
    endpoint: str | None = None
    category: str = "http"  # "admin" for Django admin-site requests (as the adapter records them)
    methods_inferred: bool = False  # the view's methods are not declared: every common one is checked
    host: str | None = None  # Flask subdomain / Starlette Host the route is served on


@dataclass(frozen=True)
class AppTable:
    table: str
    model: str | None = None  # None: named only by the policy's critical.tables
    orm: bool = True  # rows change through an ORM (create_resource...) or raw SQL (insert...)
    resource_type: str | None = None  # what the adapter writes as audit.target.type


@dataclass
class AppInventory:
    framework: str
    routes: list[AppRoute] = field(default_factory=list)
    tables: list[AppTable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was deliberately not listed, and why
    database: str | None = None  # where raw-SQL tables were read from (password masked)


# ---------------------------------------------------------------------------------------------
# Loading the app


def load_target(spec: str, app_dir: str | None = None) -> tuple[Any, str]:
    """``module:attr`` (an app object or a factory taking no arguments) or ``module`` (a Django
    settings module, or a module with an ``app``). Returns (object, kind)."""
    directory = os.path.abspath(app_dir or os.getcwd())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise CoverageError(f"--app {spec!r}: expected module:app (Flask/FastAPI) or a Django settings module")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CoverageError(f"--app {spec!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc}); "
                            f"is {directory} the right --app-dir?") from None
    if not attr:
        if hasattr(module, "ROOT_URLCONF") or hasattr(module, "INSTALLED_APPS"):
            return module, "django"
        attr = "app"
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise CoverageError(f"--app {spec!r}: {module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    kind = framework_of(target)
    if kind is None and callable(target) and not isinstance(target, type):
        try:
            target = target()  # an app factory
        except Exception as exc:
            raise CoverageError(f"--app {spec!r}: the factory {attr}() raised {type(exc).__name__}: {exc}") from None
        kind = framework_of(target)
    if kind is None:
        raise CoverageError(f"--app {spec!r}: {type(target).__name__} is not a Flask, Starlette/FastAPI app "
                            "or Django settings module")
    return target, kind


def framework_of(obj: Any) -> str | None:
    """By class ancestry names, so no framework is imported to ask."""
    for cls in type(obj).__mro__:
        qualified = f"{cls.__module__}.{cls.__qualname__}"
        if qualified == "flask.app.Flask" or (cls.__module__.startswith("flask") and cls.__name__ == "Flask"):
            return "flask"
        if qualified == "starlette.applications.Starlette":
            return "starlette"
    return None


def inventory(spec: str, app_dir: str | None = None, extra_modules: Iterable[str] = (),
              database: str | None = None) -> AppInventory:
    """Routes and tables of the app, each read by its framework's discovery module."""
    from otel_audit.instrumentation.dbapi import tables as dbapi_tables
    from otel_audit.instrumentation.sqlalchemy import tables as sqlalchemy_tables

    target, kind = load_target(spec, app_dir)
    for name in extra_modules:
        importlib.import_module(name)
    configured = None
    if kind == "flask":
        from otel_audit.instrumentation.flask import routes as flask_routes

        found = AppInventory("flask", flask_routes.routes(target))
        configured = flask_routes.configured_database(target)
    elif kind == "starlette":
        found = _starlette_inventory(target)
    else:
        found = _django_inventory(target)
    if kind != "django":
        package = (spec.partition(":")[0]).split(".")[0]
        found.tables = sqlalchemy_tables.tables([package, *extra_modules])
    if not found.routes:
        raise CoverageError(f"--app {spec!r}: no routes found; nothing to check (is this the app object "
                            "the server runs?)")
    if database or configured:
        try:
            in_database = dbapi_tables.tables(database or str(configured))
        except dbapi_tables.DatabaseUnreadable as exc:
            if database:
                raise CoverageError(str(exc)) from None
            found.notes.append(f"the app's configured database was not read: {exc}".replace("--database ", ""))
            return found
        database = database or str(configured)
        known = {t.table for t in found.tables}
        found.tables = sorted([*found.tables, *(t for t in in_database if t.table not in known)],
                              key=lambda t: t.table)
        found.database = dbapi_tables.shown(database)
    return found


def _starlette_inventory(app: Any) -> AppInventory:
    """Routes by walking the app; a FastAPI app's OpenAPI schema must list nothing the walk missed."""
    from otel_audit.instrumentation.starlette import routes as starlette_routes

    try:
        routes, notes = starlette_routes.routes(app)
    except starlette_routes.UnknownRoute as exc:
        raise CoverageError(str(exc)) from None
    schema = starlette_routes.schema_operations(app)
    if schema is not None:
        listed = {(r.method, r.route) for r in routes}
        missed = sorted(schema - listed)
        if missed:
            raise CoverageError(f"FastAPI's OpenAPI schema lists {len(schema)} operations, {len(missed)} of which "
                                "route discovery did not find: " + ", ".join(f"{m} {p}" for m, p in missed[:10]))
    return AppInventory("starlette", routes, notes=notes)


def _django_inventory(settings_module: Any) -> AppInventory:
    from otel_audit.instrumentation.django import routes as django_routes

    django_routes.setup(settings_module)
    try:
        routes = django_routes.routes()
    except django_routes.UnknownPattern as exc:
        raise CoverageError(str(exc)) from None
    return AppInventory("django", routes, django_routes.tables())


# ---------------------------------------------------------------------------------------------
# Coverage


@dataclass
class Row:
    kind: str  # route | table
    subject: str  # "DELETE /admin/users/<username>" or "users DELETE"
    event_name: str
    rule: str
    level: str  # none when not audited
    status: str  # covered (for every actor) | partial (for some: covered_for) | default | none
    critical: str | None  # the critical pattern that applies
    why: list[str]
    details: dict[str, Any]
    covered_for: list[str] = field(default_factory=list)  # the ACTORS an explicit rule covers

    @property
    def failing(self) -> bool:
        return self.critical is not None and self.status != "covered"


#: Who can call a route or change a row: each is checked, since a rule may filter on the actor.
ACTORS = ("admins", "users", "anonymous")


def _actor(policy: Any, who: str = "admins") -> Actor:
    """An administrator (the policy's first admin role), a signed-in user without roles, or nobody."""
    if who == "anonymous":
        return Actor(type="anonymous", source="coverage")
    roles = tuple(policy.model.actors.admin_roles[:1]) if who == "admins" else ()
    return Actor(id="coverage-check", name="coverage-check", roles=roles, type="user", source="coverage")


def route_event(route: AppRoute, policy: Any, who: str = "admins") -> AuditEvent:
    """What the HTTP adapter records for a successful request to ``route`` by ``who``."""
    return AuditEvent(category=route.category, action="request", outcome="success", actor=_actor(policy, who),
                      http=HttpInfo(method=route.method, route=route.route, status_code=200), origin="coverage")


def table_event(table: AppTable, operation: str, orm_action: str, sql_action: str, policy: Any,
                who: str = "admins") -> AuditEvent:
    """What the DB adapters record for a row change in ``table`` made by ``who``."""
    return AuditEvent(category="data_modification", action=orm_action if table.orm else sql_action,
                      outcome="success", actor=_actor(policy, who),
                      target=Target(type=table.resource_type or table.table),
                      db=DbInfo(collection=table.table, operation=operation), origin="coverage")


def _status(explanation: Any) -> tuple[str, str]:
    decision = explanation.decision
    if decision is None:
        return "none", "none"
    return ("default" if explanation.rule_id == "default" else "covered"), decision.level


def _row(kind: str, subject: str, events: dict[str, AuditEvent], policy: Any, critical: str | None,
         details: dict[str, Any]) -> Row:
    """The admin's event names the row (as before actors were told apart); every actor's decides
    whether it is covered for all (``covered``) or only some (``partial``)."""
    explanations = {who: policy.explain(event) for who, event in events.items()}
    statuses = {who: _status(explanation) for who, explanation in explanations.items()}
    covered_for = [who for who in ACTORS if statuses[who][0] == "covered"]
    explanation = explanations["admins"]
    status, level = statuses["admins"]
    if covered_for and len(covered_for) < len(ACTORS):
        status = "partial"
        explanation = explanations[covered_for[0]]
        level = statuses[covered_for[0]][1]
        uncovered = [f"for {who}: {_explain_failure_of(statuses[who][0], explanations[who].rule_id)}"
                     for who in ACTORS if who not in covered_for]
        why = [*explanation.why, *uncovered]
    else:
        why = explanation.why
    return Row(kind, subject, events["admins"].event_name, explanation.rule_id, level, status, critical, why,
               details, covered_for)


def check(found: AppInventory, policy: Any, extra_tables: Iterable[str] = ()) -> list[Row]:
    """A row per route x method and per table x operation, decided by the policy's own explain."""
    from otel_audit.policy.globs import compile_globs, normalise_route

    critical = policy.model.critical
    route_patterns = [(set(c.methods), compile_globs([c.path]), c.text) for c in critical.routes]
    table_patterns = [(compile_globs([glob]), glob) for glob in critical.tables]

    def critical_route(route: AppRoute) -> str | None:
        template = normalise_route(route.route)
        for methods, pattern, text in route_patterns:
            if (not methods or route.method in methods) and pattern is not None and pattern.match(template):
                return text
        return None

    def critical_table(name: str) -> str | None:
        return next((glob for pattern, glob in table_patterns if pattern is not None and pattern.match(name)), None)

    rows = []
    for route in found.routes:
        subject = f"{route.method} {route.route}" + (f" (host {route.host})" if route.host else "")
        rows.append(_row("route", subject, {who: route_event(route, policy, who) for who in ACTORS}, policy,
                         critical_route(route), {"method": route.method, "route": route.route,
                                                 "endpoint": route.endpoint, "host": route.host,
                                                 "methods_inferred": route.methods_inferred}))
    tables = {t.table: t for t in found.tables}
    # Tables the policy names (or --table) that no model declares: raw-SQL apps have no models.
    literal = [glob for glob in critical.tables if not any(c in glob for c in "*?{")]
    for name in [*literal, *extra_tables]:
        tables.setdefault(name, AppTable(name, None, False, name))
    for table in sorted(tables.values(), key=lambda t: t.table):
        for operation, orm_action, sql_action in TABLE_OPERATIONS:
            rows.append(_row("table", f"{table.table} {operation}",
                             {who: table_event(table, operation, orm_action, sql_action, policy, who)
                              for who in ACTORS},
                             policy, critical_table(table.table),
                             {"table": table.table, "operation": operation, "model": table.model}))
    return rows


# ---------------------------------------------------------------------------------------------
# Output


def report_json(app: str, framework: str, policy: Any, rows: list[Row], notes: Sequence[str] = (),
                found_database: str | None = None) -> str:
    failing = [row for row in rows if row.failing]
    return json.dumps({
        "app": app,
        "framework": framework,
        "policy": {"id": policy.id, "version": policy.version, "hash": policy.hash,
                   "sources": list(policy.model.sources)},
        "ok": not failing,
        "database": found_database,
        "notes": notes,
        "routes": [_row_dict(row) for row in rows if row.kind == "route"],
        "tables": [_row_dict(row) for row in rows if row.kind == "table"],
        "uncovered_critical": [_row_dict(row) for row in failing],
    }, indent=2)


def _row_dict(row: Row) -> dict[str, Any]:
    data = asdict(row)
    data.update(data.pop("details"))
    data["failing"] = row.failing
    return data


def _explain_failure_of(status: str, rule: str) -> str:
    if status == "default":
        return "no rule matches: falls to the policy default"
    return f"rule {rule} sets level none (not audited)"


def _explain_failure(row: Row) -> str:
    if row.status == "partial":
        return f"rule {row.rule} covers {_who(row.covered_for)} only; " + "; ".join(
            line for line in row.why if line.startswith("for "))
    return _explain_failure_of(row.status, row.rule)


def _who(actors: list[str]) -> str:
    return " and ".join(actors)


def _shown_status(row: Row) -> str:
    return f"covered for {_who(row.covered_for)} only" if row.status == "partial" else row.status


def report_text(app: str, framework: str, policy: Any, rows: list[Row], notes: Sequence[str] = (),
                found_database: str | None = None) -> str:
    lines = [f"otel-audit coverage: {app} ({framework}); policy {policy.id} version {policy.version}", ""]
    for kind, title in (("route", "ROUTES"), ("table", "TABLES")):
        selected = [row for row in rows if row.kind == kind]
        source = f" (models, and the tables of {found_database})" if kind == "table" and found_database else ""
        lines.append(f"{title} ({len(selected)}){source}")
        if not selected:
            lines.append("  (none found: no models, no --database, no --table; tables were not checked)"
                         if kind == "table" else "  (none found)")
        width = max([len(row.subject) for row in selected] + [10])
        event_width = max([len(row.event_name) for row in selected] + [10])
        for row in selected:
            mark = "!" if row.failing else ("*" if row.critical else " ")
            lines.append(f"  {mark} {row.subject:<{width}}  {row.event_name:<{event_width}}  "
                         f"{_shown_status(row):<7}  {row.rule} ({row.level})")
        lines.append("")
    for note in notes:
        lines.append(f"note: {note}")
    if notes:
        lines.append("")
    counts = {status: sum(1 for row in rows if row.status == status)
              for status in ("covered", "partial", "default", "none")}
    critical = [row for row in rows if row.critical]
    failing = [row for row in rows if row.failing]
    lines.append(f"{len(rows)} checked: {counts['covered']} covered by a rule for every actor, {counts['partial']} "
                 f"for some actors only, {counts['default']} by the default, {counts['none']} not audited; "
                 f"{len(critical)} critical (* above)")
    if failing:
        lines.append(f"FAIL: {len(failing)} critical {'entry is' if len(failing) == 1 else 'entries are'} "
                     "not covered by an explicit rule (! above):")
        for row in failing:
            lines.append(f"  {row.subject} (critical: {row.critical!r}): {_explain_failure(row)}")
    else:
        lines.append("OK: every critical route and table is covered by an explicit rule, for every actor")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line


def run(args: argparse.Namespace) -> int:
    from otel_audit.policy import PolicyError, load_policy

    source = args.policy or raw_setting("OTEL_AUDIT_POLICY") or None
    try:
        policy = load_policy(source, environ={})
    except PolicyError as exc:
        print(f"otel-audit coverage: the policy is invalid:\n{exc.report()}", file=sys.stderr)
        return 1
    try:
        found = inventory(args.app, args.app_dir, args.models or (), args.database)
    except CoverageError as exc:
        print(f"otel-audit coverage: {exc}", file=sys.stderr)
        return 2
    rows = check(found, policy, args.table or ())
    render = report_json if args.format == "json" else report_text
    print(render(args.app, found.framework, policy, rows, found.notes, found.database))
    return 1 if any(row.failing for row in rows) else 0


def add_coverage_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "coverage", help="which policy rule covers each route and table of an app; exit 1 if a critical one is not")
    parser.add_argument("--app", required=True, help="module:app (Flask, FastAPI/Starlette; a factory works too) "
                        "or a Django settings module")
    parser.add_argument("--app-dir", help="directory to import the app from (default: the current directory)")
    parser.add_argument("--policy", help="policy file, inline YAML or pack:NAME (default: OTEL_AUDIT_POLICY, "
                        "else the built-in default)")
    parser.add_argument("--table", action="append", metavar="NAME", help="also check this table (raw-SQL apps "
                        "have no models to find tables in); repeatable")
    parser.add_argument("--database", metavar="URL", help="read the tables of this database (sqlite:///path, a "
                        "SQLite file, postgresql://...) for raw-SQL apps; default: the app's configured one "
                        "(Flask DATABASE / SQLALCHEMY_DATABASE_URI), if any")
    parser.add_argument("--models", action="append", metavar="MODULE", help="import this module too, to find "
                        "SQLAlchemy models defined outside the app's package; repeatable")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)
