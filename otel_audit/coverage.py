"""``otel-audit coverage``: which policy rule covers each route and table of an app (a CI gate).

Every route (method x path template) of a Flask app, a Starlette/FastAPI app or a Django project,
and every table of its SQLAlchemy or Django models, becomes the synthetic :class:`AuditEvent` the
adapter would produce for it, and the compiled policy's own ``explain`` says which rule decides
and at what level - no matching is re-implemented here. The policy's ``critical:`` section marks
what must be covered by an explicit rule at a level other than ``none``; the command exits 1 when
something critical is not. Frameworks are imported lazily, only for the app being inspected.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

from otel_audit.event import Actor, AuditEvent, DbInfo, HttpInfo, Target

#: Methods a route whose methods cannot be known (a Django function view) is checked for.
ANY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: Methods frameworks add to every route on their own.
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})
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
        target = target()  # an app factory
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


def inventory(spec: str, app_dir: str | None = None, extra_modules: Iterable[str] = ()) -> AppInventory:
    target, kind = load_target(spec, app_dir)
    for name in extra_modules:
        importlib.import_module(name)
    if kind == "flask":
        found = AppInventory("flask", flask_routes(target))
    elif kind == "starlette":
        found = AppInventory("starlette", starlette_routes(target))
    else:
        return django_inventory(target)
    package = (spec.partition(":")[0]).split(".")[0]
    found.tables = sqlalchemy_tables([package, *extra_modules])
    return found


# ---------------------------------------------------------------------------------------------
# Routes, one small function per framework


def flask_routes(app: Any) -> list[AppRoute]:
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted(set(rule.methods or ()) - IMPLICIT_METHODS):
            routes.append(AppRoute(method, rule.rule, rule.endpoint))
    return sorted(routes, key=lambda r: (r.route, r.method))


def starlette_routes(app: Any) -> list[AppRoute]:
    from starlette.routing import Mount, Route

    def walk(routes: Iterable[Any], prefix: str) -> Iterable[AppRoute]:
        for route in routes:
            if isinstance(route, Mount):
                yield from walk(getattr(route, "routes", None) or (), prefix + route.path)
            elif isinstance(route, Route):
                for method in sorted(set(route.methods or ANY_METHODS) - IMPLICIT_METHODS):
                    yield AppRoute(method, prefix + route.path, route.name, methods_inferred=route.methods is None)

    return sorted(walk(app.routes, ""), key=lambda r: (r.route, r.method))


def django_inventory(settings_module: Any) -> AppInventory:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module.__name__)
    import django
    from django.apps import apps
    from django.urls import URLPattern, URLResolver, get_resolver

    django.setup()

    def walk(patterns: Iterable[Any], prefix: str, namespaces: tuple[str, ...]) -> Iterable[AppRoute]:
        for pattern in patterns:
            text = str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                spaces = namespaces + ((pattern.namespace,) if pattern.namespace else ())
                yield from walk(pattern.url_patterns, prefix + text, spaces)
            elif isinstance(pattern, URLPattern):
                category = "admin" if "admin" in namespaces else "http"
                view_class = getattr(pattern.callback, "view_class", None)
                if view_class is not None:
                    methods = [m.upper() for m in view_class.http_method_names
                               if m not in ("head", "options") and hasattr(view_class, m)]
                    inferred = False
                else:
                    methods, inferred = list(ANY_METHODS), True
                for method in methods:
                    yield AppRoute(method, "/" + prefix + text, pattern.name, category, inferred)

    routes = sorted(walk(get_resolver().url_patterns, "", ()), key=lambda r: (r.route, r.method))
    tables = [AppTable(model._meta.db_table, f"{model.__module__}.{model.__qualname__}", True,  # noqa: SLF001
                       f"{model._meta.app_label}.{model._meta.model_name}")  # noqa: SLF001
              for model in apps.get_models()]
    return AppInventory("django", routes, sorted(tables, key=lambda t: t.table))


# ---------------------------------------------------------------------------------------------
# Tables of SQLAlchemy models


def sqlalchemy_tables(packages: Sequence[str]) -> list[AppTable]:
    """Tables of the SQLAlchemy models (declarative classes, Flask-SQLAlchemy ``db``, bare
    ``MetaData``) in the already imported modules of the app's package."""
    if "sqlalchemy" not in sys.modules:
        return []
    from sqlalchemy import MetaData

    metadatas: dict[int, tuple[Any, str]] = {}
    models: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not any(name == p or name.startswith(p + ".") for p in packages):
            continue
        for attr, value in list(vars(module).items()):
            metadata = value if isinstance(value, MetaData) else getattr(value, "metadata", None)
            if isinstance(metadata, MetaData):
                metadatas.setdefault(id(metadata), (metadata, f"{name}.{attr}"))
            table = getattr(value, "__table__", None)
            if isinstance(value, type) and getattr(table, "name", None):
                models.setdefault(table.name, f"{value.__module__}.{value.__qualname__}")
    tables = {}
    for metadata, where in metadatas.values():
        for table in metadata.tables.values():
            tables[table.name] = AppTable(table.name, models.get(table.name, where), True, table.name)
    return sorted(tables.values(), key=lambda t: t.table)


# ---------------------------------------------------------------------------------------------
# Coverage


@dataclass
class Row:
    kind: str  # route | table
    subject: str  # "DELETE /admin/users/<username>" or "users DELETE"
    event_name: str
    rule: str
    level: str  # none when not audited
    status: str  # covered | default | none
    critical: str | None  # the critical pattern that applies
    why: list[str]
    details: dict[str, Any]

    @property
    def failing(self) -> bool:
        return self.critical is not None and self.status != "covered"


def _actor(policy: Any) -> Actor:
    """A signed-in administrator: what a legitimate call to an admin route looks like."""
    roles = tuple(policy.model.actors.admin_roles[:1])
    return Actor(id="coverage-check", name="coverage-check", roles=roles, type="user", source="coverage")


def route_event(route: AppRoute, policy: Any) -> AuditEvent:
    """What the HTTP adapter records for a successful request to ``route``."""
    return AuditEvent(category=route.category, action="request", outcome="success", actor=_actor(policy),
                      http=HttpInfo(method=route.method, route=route.route, status_code=200), origin="coverage")


def table_event(table: AppTable, operation: str, orm_action: str, sql_action: str, policy: Any) -> AuditEvent:
    """What the DB adapters record for a row change in ``table``."""
    return AuditEvent(category="data_modification", action=orm_action if table.orm else sql_action,
                      outcome="success", actor=_actor(policy), target=Target(type=table.resource_type or table.table),
                      db=DbInfo(collection=table.table, operation=operation), origin="coverage")


def _row(kind: str, subject: str, event: AuditEvent, policy: Any, critical: str | None,
         details: dict[str, Any]) -> Row:
    explanation = policy.explain(event)
    decision = explanation.decision
    if decision is None:
        status, level = "none", "none"
    elif explanation.rule_id == "default":
        status, level = "default", decision.level
    else:
        status, level = "covered", decision.level
    return Row(kind, subject, event.event_name, explanation.rule_id, level, status, critical, explanation.why,
               details)


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
        rows.append(_row("route", f"{route.method} {route.route}", route_event(route, policy), policy,
                         critical_route(route), {"method": route.method, "route": route.route,
                                                 "endpoint": route.endpoint,
                                                 "methods_inferred": route.methods_inferred}))
    tables = {t.table: t for t in found.tables}
    # Tables the policy names (or --table) that no model declares: raw-SQL apps have no models.
    literal = [glob for glob in critical.tables if not any(c in glob for c in "*?{")]
    for name in [*literal, *extra_tables]:
        tables.setdefault(name, AppTable(name, None, False, name))
    for table in sorted(tables.values(), key=lambda t: t.table):
        for operation, orm_action, sql_action in TABLE_OPERATIONS:
            rows.append(_row("table", f"{table.table} {operation}",
                             table_event(table, operation, orm_action, sql_action, policy),
                             policy, critical_table(table.table),
                             {"table": table.table, "operation": operation, "model": table.model}))
    return rows


# ---------------------------------------------------------------------------------------------
# Output


def report_json(app: str, framework: str, policy: Any, rows: list[Row]) -> str:
    failing = [row for row in rows if row.failing]
    return json.dumps({
        "app": app,
        "framework": framework,
        "policy": {"id": policy.id, "version": policy.version, "hash": policy.hash,
                   "sources": list(policy.model.sources)},
        "ok": not failing,
        "routes": [_row_dict(row) for row in rows if row.kind == "route"],
        "tables": [_row_dict(row) for row in rows if row.kind == "table"],
        "uncovered_critical": [_row_dict(row) for row in failing],
    }, indent=2)


def _row_dict(row: Row) -> dict[str, Any]:
    data = asdict(row)
    data.update(data.pop("details"))
    data["failing"] = row.failing
    return data


def _explain_failure(row: Row) -> str:
    if row.status == "default":
        return "no rule matches: falls to the policy default"
    return f"rule {row.rule} sets level none (not audited)"


def report_text(app: str, framework: str, policy: Any, rows: list[Row]) -> str:
    lines = [f"otel-audit coverage: {app} ({framework}); policy {policy.id} version {policy.version}", ""]
    for kind, title in (("route", "ROUTES"), ("table", "TABLES")):
        selected = [row for row in rows if row.kind == kind]
        lines.append(f"{title} ({len(selected)})")
        if not selected:
            lines.append("  (none found)")
        width = max([len(row.subject) for row in selected] + [10])
        event_width = max([len(row.event_name) for row in selected] + [10])
        for row in selected:
            mark = "!" if row.failing else ("*" if row.critical else " ")
            lines.append(f"  {mark} {row.subject:<{width}}  {row.event_name:<{event_width}}  "
                         f"{row.status:<7}  {row.rule} ({row.level})")
        lines.append("")
    counts = {status: sum(1 for row in rows if row.status == status) for status in ("covered", "default", "none")}
    critical = [row for row in rows if row.critical]
    failing = [row for row in rows if row.failing]
    lines.append(f"{len(rows)} checked: {counts['covered']} covered by a rule, {counts['default']} by the default, "
                 f"{counts['none']} not audited; {len(critical)} critical (* above)")
    if failing:
        lines.append(f"FAIL: {len(failing)} critical {'entry is' if len(failing) == 1 else 'entries are'} "
                     "not covered by an explicit rule (! above):")
        for row in failing:
            lines.append(f"  {row.subject} (critical: {row.critical!r}): {_explain_failure(row)}")
    else:
        lines.append("OK: every critical route and table is covered by an explicit rule")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line


def run(args: argparse.Namespace) -> int:
    from otel_audit.policy import PolicyError, load_policy

    source = args.policy or os.environ.get("OTEL_AUDIT_POLICY") or None
    try:
        policy = load_policy(source, environ={})
    except PolicyError as exc:
        print(f"otel-audit coverage: the policy is invalid:\n{exc.report()}", file=sys.stderr)
        return 1
    try:
        found = inventory(args.app, args.app_dir, args.models or ())
    except CoverageError as exc:
        print(f"otel-audit coverage: {exc}", file=sys.stderr)
        return 2
    rows = check(found, policy, args.table or ())
    render = report_json if args.format == "json" else report_text
    print(render(args.app, found.framework, policy, rows))
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
    parser.add_argument("--models", action="append", metavar="MODULE", help="import this module too, to find "
                        "SQLAlchemy models defined outside the app's package; repeatable")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)
