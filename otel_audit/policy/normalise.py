"""Normalising one schema-valid document into a partial policy: rule and route shorthands become
ordinary rules (``audit_configs``, ``user_filter``), globs and methods are checked, old action
names become the vocabulary's (noted), and every semantic problem is collected with its place.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from otel_audit.catalogue import ACTION_ALIASES
from otel_audit.event import CATEGORIES
from otel_audit.local_time import zone_named
from otel_audit.policy.errors import PolicyError, Problem, format_path, shown
from otel_audit.policy.globs import GlobError, glob_to_regex
from otel_audit.policy.model import ADMIN, Condition, CriticalRoute, Match, Route, Rule
from otel_audit.policy.schema_messages import kind_of, schema_problems
from otel_audit.policy.source import Document


def as_tuple(value: Any) -> tuple[Any, ...]:
    """A value that may be one item or a list, as a tuple (None: empty)."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else (value,)


def _status_ranges(value: Any) -> tuple[tuple[int, int], ...]:
    ranges = []
    for item in as_tuple(value):
        if isinstance(item, int):
            ranges.append((item, item))
        elif item.endswith("xx"):
            ranges.append((int(item[0]) * 100, int(item[0]) * 100 + 99))
        else:
            low, high = (int(part) for part in item.split("-"))
            if low > high:
                raise ValueError(f"range {item!r} is empty: {low} is above {high}")
            ranges.append((low, high))
    return tuple(ranges)


def attribute_pairs(value: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v) for k, v in (value or {}).items()))


class _Normaliser:
    """Turns one schema-valid document into a partial policy, collecting semantic problems."""

    def __init__(self, doc: Document, prefix: str) -> None:
        self.doc = doc
        self.prefix = prefix  # rule ids of included documents are prefixed with their name
        self.problems: list[Problem] = []
        self.notes: list[str] = []

    def fail(self, path: tuple[Any, ...], message: str, key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, message, key))

    def checked(self, path: tuple[Any, ...], build: Callable[[], Any], default: Any = ()) -> Any:
        try:
            return build()
        except (ValueError, GlobError) as exc:
            self.fail(path, str(exc))
            return default

    def globs(self, path: tuple[Any, ...], value: Any, is_path: bool = False) -> tuple[str, ...]:
        patterns = as_tuple(value)
        for index, pattern in enumerate(patterns):
            where = path + (index,) if isinstance(value, list) else path
            try:
                glob_to_regex(pattern)
            except GlobError as exc:
                self.fail(where, f"{shown(pattern)}: {exc}")
            if is_path and not pattern.startswith(("/", "*", "{")):
                self.fail(where, f"{shown(pattern)} must start with '/' or '*' (a path glob such as /admin/*)")
        return patterns

    def methods(self, path: tuple[Any, ...], value: Any) -> tuple[str, ...]:
        methods = tuple(method.upper() for method in as_tuple(value))
        for method in methods:
            if method != "*" and not re.fullmatch(r"[A-Z]+", method):
                self.fail(path, f"{shown(method)} is not an HTTP method (GET, POST, ...)")
        return () if "*" in methods else methods

    def action_name(self, path: tuple[Any, ...], name: Any) -> Any:
        """An old action name (``delete``, ``insert`` ...) as its one-vocabulary name, noted for
        ``policy validate``."""
        canonical = ACTION_ALIASES.get(name) if isinstance(name, str) else None
        if canonical is None:
            return name
        self.notes.append(str(self.doc.problem(path, f"action {name!r} is the old name of {canonical!r}; "
                                                      f"read as {canonical!r}")))
        return canonical

    def actions(self, path: tuple[Any, ...], value: Any) -> tuple[str, ...]:
        names = self.globs(path, value)
        return tuple(dict.fromkeys(self.action_name(path + ((i,) if isinstance(value, list) else ()), name)
                                   for i, name in enumerate(names)))

    def match(self, path: tuple[Any, ...], spec: Mapping[str, Any]) -> Match:
        return Match(
            categories=as_tuple(spec.get("category")),
            actions=self.actions(path + ("action",), spec.get("action")),
            methods=self.methods(path + ("method",), spec.get("method")),
            paths=self.globs(path + ("path",), spec.get("path"), is_path=True),
            resource_types=self.globs(path + ("resource_type",), spec.get("resource_type")),
            actor_ids=tuple(str(v) for v in as_tuple(spec.get("actor_id"))),
            actor_roles=as_tuple(spec.get("actor_role")),
            outcomes=as_tuple(spec.get("outcome")),
            status=self.checked(path + ("status",), lambda: _status_ranges(spec.get("status"))),
            db_operations=tuple(op.upper() for op in as_tuple(spec.get("db_operation"))),
            db_tables=self.globs(path + ("db_table",), spec.get("db_table")),
        )

    def rule(self, path: tuple[Any, ...], spec: Mapping[str, Any], match: Match, default_id: str) -> Rule:
        return Rule(
            id=spec.get("id") or f"{self.prefix}{default_id}",
            match=match,
            level=spec.get("level"),
            log_success=spec.get("log_success"),
            log_failure=spec.get("log_failure"),
            required=spec.get("required"),
            attributes=attribute_pairs(spec.get("attributes")),
            tags=tuple(spec.get("tags") or ()),
            granularity=spec.get("granularity"),
        )

    def shorthand(self, index: int, spec: Mapping[str, Any]) -> Rule:
        path = ("audit_configs", index)
        match = self.match(path, spec)
        user_filter = spec.get("user_filter", "all")
        if user_filter == "admin_only":
            match = _replace(match, actor_roles=match.actor_roles + (ADMIN,))
        elif user_filter == "non_admin":
            match = _replace(match, actor_not_roles=(ADMIN,))
        elif user_filter == "authenticated":
            match = _replace(match, actor_authenticated=True)
        elif user_filter == "anonymous":
            match = _replace(match, actor_authenticated=False)
        elif isinstance(user_filter, list):
            match = _replace(match, actor_roles=match.actor_roles + tuple(user_filter))
        return self.rule(path, spec, match, f"audit_configs[{index}]")

    def conditions(self, path: tuple[Any, ...], value: Any) -> tuple[Condition, ...]:
        out = []
        for index, spec in enumerate(as_tuple(value)):
            where = path + (index,) if isinstance(value, list) else path
            out.append(Condition(
                status=self.checked(where + ("status",), lambda: _status_ranges(spec.get("status"))),
                redirect=self.globs(where + ("redirect",), spec.get("redirect")),
                redirect_not=self.globs(where + ("redirect_not",), spec.get("redirect_not")),
                response_header=tuple(sorted((str(k).lower(), v) for k, v in (spec.get("response_header") or {}).items())),
                session_changed=spec.get("session_changed"),
                actor_changed=spec.get("actor_changed"),
            ))
            for name, pattern in (spec.get("response_header") or {}).items():
                self.globs(where + ("response_header", name), pattern)
        return tuple(out)

    def route(self, index: int, spec: Mapping[str, Any]) -> Route:
        path = ("routes", index)
        methods: tuple[str, ...] = ()
        paths: tuple[str, ...] = ()
        if "request" in spec:
            if "method" in spec or "path" in spec:
                self.fail(path + ("request",), "give either request: \"METHOD /path\" or method/path, not both", key=True)
            for number, request in enumerate(as_tuple(spec["request"])):
                where = path + ("request",) + ((number,) if isinstance(spec["request"], list) else ())
                parts = request.split()
                if len(parts) == 1 and parts[0].startswith(("/", "*")):
                    parts = ["*", parts[0]]
                if len(parts) != 2:
                    self.fail(where, f"{shown(request)} is not \"METHOD /path-glob\" (e.g. \"POST /auth/login\")")
                    continue
                methods += self.methods(where, parts[0].split("|")) or ("*",)
                paths += self.globs(where, parts[1], is_path=True)
            methods = () if "*" in methods else tuple(dict.fromkeys(methods))
        elif "path" in spec:
            methods = self.methods(path + ("method",), spec.get("method"))
            paths = self.globs(path + ("path",), spec["path"], is_path=True)
        else:
            self.fail(path, "a route needs request: \"METHOD /path\" or path:")
        return Route(
            id=spec.get("id") or f"{self.prefix}routes[{index}]",
            methods=methods,
            paths=tuple(dict.fromkeys(paths)),
            category=spec["category"],
            action=self.action_name(path + ("action",), spec["action"]),
            failure_action=self.action_name(path + ("failure_action",), spec.get("failure_action")),
            success_when=self.conditions(path + ("success_when",), spec.get("success_when")),
            failure_when=self.conditions(path + ("failure_when",), spec.get("failure_when")),
            attributes=attribute_pairs(spec.get("attributes")),
        )

    def run(self) -> dict[str, Any]:
        data = self.doc.data
        partial: dict[str, Any] = {}
        for key in ("id", "description", "failure_mode"):
            if key in data:
                partial[key] = data[key]
        if "version" in data:
            partial["version"] = str(data["version"])
        if "defaults" in data:
            spec = data["defaults"]
            partial["defaults"] = {k: v for k, v in spec.items() if k not in ("attributes", "tags")}
            if "attributes" in spec:
                partial["defaults"]["attributes"] = attribute_pairs(spec["attributes"])
            if "tags" in spec:
                partial["defaults"]["tags"] = tuple(spec["tags"])
        if "redaction" in data:
            partial["redaction"] = data["redaction"]
            self.check_redaction(data["redaction"])
        if "required_fields" in data:
            for category in data["required_fields"]:
                if category != "*" and category not in CATEGORIES:
                    self.fail(("required_fields", category),
                              f"{shown(category)} is not a category: expected *, {', '.join(CATEGORIES)}", key=True)
            partial["required_fields"] = {str(k): tuple(v) for k, v in data["required_fields"].items()}
        if "actors" in data:
            partial["actors"] = self.actors(data["actors"])
        if "local_time" in data:
            partial["local_time"] = self.local_time(data["local_time"])
        rules = [self.rule(("rules", i), spec, self.match(("rules", i, "match"), spec.get("match") or {}), f"rules[{i}]")
                 for i, spec in enumerate(data.get("rules") or [])]
        rules += [self.shorthand(i, spec) for i, spec in enumerate(data.get("audit_configs") or [])]
        self.unique_ids("rules", data.get("rules") or [], "audit_configs", data.get("audit_configs") or [])
        partial["rules"] = rules
        partial["routes"] = [self.route(i, spec) for i, spec in enumerate(data.get("routes") or [])]
        self.unique_ids("routes", data.get("routes") or [])
        if "critical" in data:
            partial["critical"] = self.critical(data["critical"])
        partial["notes"] = tuple(self.notes)
        return partial

    def critical(self, spec: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
        """``critical.routes`` ("METHOD /glob" or "/glob") and ``critical.tables`` (globs)."""
        routes = []
        for number, text in enumerate(as_tuple(spec.get("routes"))):
            where = ("critical", "routes") + ((number,) if isinstance(spec.get("routes"), list) else ())
            parts = text.split()
            if len(parts) == 1 and parts[0].startswith(("/", "*")):
                parts = ["*", parts[0]]
            if len(parts) != 2:
                self.fail(where, f"{shown(text)} is not \"METHOD /path-glob\" or \"/path-glob\" (e.g. \"DELETE *\")")
                continue
            methods = self.methods(where, parts[0].split("|"))
            self.globs(where, parts[1], is_path=True)
            routes.append(CriticalRoute(methods, parts[1], text))
        tables = self.globs(("critical", "tables"), spec.get("tables"))
        return {"routes": tuple(routes), "tables": tuple(tables)}

    def unique_ids(self, *sections: Any) -> None:
        seen: dict[str, str] = {}
        for name, items in zip(sections[::2], sections[1::2]):
            for index, spec in enumerate(items):
                rule_id = spec.get("id")
                if rule_id is None:
                    continue
                if rule_id in seen:
                    self.fail((name, index, "id"), f"duplicate id {rule_id!r} (first used at {seen[rule_id]})")
                else:
                    seen[rule_id] = f"{name}[{index}]"

    def actors(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "sources" in spec:
            from otel_audit.actors import ActorResolver

            for index, source in enumerate(spec["sources"]):
                try:
                    ActorResolver([source])
                except (ValueError, ImportError, AttributeError) as exc:
                    detail = str(exc) if isinstance(exc, ValueError) else f"cannot load it ({type(exc).__name__})"
                    self.fail(("actors", "sources", index),
                              f"{shown(source)}: {detail}; expected framework_user, app_user, session:KEY, "
                              "header:NAME, jwt:CLAIM or resolver:MODULE:FUNC")
            out["sources"] = tuple(spec["sources"])
        if "admin_roles" in spec:
            out["admin_roles"] = tuple(spec["admin_roles"])
        if "record_attempted_username" in spec:
            out["record_attempted_username"] = {True: "plain", False: "off"}.get(
                spec["record_attempted_username"], "hmac")
        for key in ("username_fields", "user_tables", "privilege_fields", "credential_fields"):
            if key in spec:
                out[key] = tuple(spec[key])
        return out

    def local_time(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """``local_time``: a zone that exists here (checked now, not at the first record)."""
        out: dict[str, Any] = {}
        if "zone" in spec:
            self.checked(("local_time", "zone"), lambda: zone_named(spec["zone"]), None)
            out["zone"] = spec["zone"]
        if "categories" in spec:
            out["categories"] = tuple(dict.fromkeys(spec["categories"]))
        return out

    def check_redaction(self, section: Any) -> None:
        """The redaction module owns its section; ask it, and keep its message and path."""
        try:
            import otel_audit.redaction as redaction
        except ImportError:  # pragma: no cover
            return
        validate = getattr(redaction, "validate_config", None)
        if validate is None:
            return
        try:
            validate(section)
        except Exception as exc:  # noqa: BLE001 - any complaint from the validator is a policy problem
            sub_path = getattr(exc, "path", None)
            path = ("redaction",) + (tuple(sub_path) if isinstance(sub_path, (list, tuple)) else ())
            message = str(getattr(exc, "message", None) or exc) or type(exc).__name__
            message = message.removeprefix(f"{format_path(path)}: ")  # we add the path ourselves
            self.fail(path, message)


def _replace(match: Match, **changes: Any) -> Match:
    from dataclasses import replace

    return replace(match, **changes)


def normalise(doc: Document, prefix: str = "") -> dict[str, Any]:
    """Schema check + semantic check of one document; raises with every problem found."""
    if not isinstance(doc.data, dict):
        raise PolicyError([doc.problem((), f"expected a mapping at the top level, got {kind_of(doc.data)}")])
    problems = schema_problems(doc)
    failure_mode = doc.data.get("failure_mode") if doc.data.get("failure_mode") == "closed" else None
    if problems:
        raise PolicyError(problems, failure_mode)
    normaliser = _Normaliser(doc, prefix)
    partial = normaliser.run()
    if normaliser.problems:
        raise PolicyError(normaliser.problems, failure_mode)
    return partial

