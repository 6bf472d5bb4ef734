"""Load a policy: find the document, check it against the JSON Schema, normalise, resolve
``extends:``, apply ``OTEL_AUDIT_POLICY_*`` overrides, and produce a :class:`PolicyModel`.

Every failure is a :class:`PolicyError` whose problems name the document, the path inside it, what
was expected and the line/column. Nothing else escapes: the fuzz test feeds generated documents.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path as FsPath
from typing import Any, Callable, Mapping

from jsonschema import Draft202012Validator

from otel_audit.catalogue import ACTION_ALIASES
from otel_audit.event import CATEGORIES
from otel_audit.policy.errors import PolicyError, Problem, format_path, shown
from otel_audit.policy.globs import GlobError, glob_to_regex
from otel_audit.policy.model import (
    ADMIN,
    DEFAULT_ADMIN_ROLES,
    ActorSettings,
    Condition,
    Critical,
    CriticalRoute,
    Defaults,
    Match,
    PolicyModel,
    Route,
    Rule,
)
from otel_audit.policy.source import Document, parse

INLINE_NAME = "<OTEL_AUDIT_POLICY>"
DEFAULT_PACK = "pack:default"
MAX_EXTENDS_DEPTH = 8


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The published JSON Schema (``otel_audit/policy/schema.json``)."""
    return json.loads(resources.files("otel_audit.policy").joinpath("schema.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


# ---------------------------------------------------------------------------------------------
# Finding the document


def pack_names() -> list[str]:
    packs = resources.files("otel_audit.policy").joinpath("packs")
    names = ["default"]
    if packs.is_dir():
        names += sorted(p.name[: -len(".yaml")] for p in packs.iterdir() if p.name.endswith(".yaml"))
    return names


def _read_pack(name: str, referrer: str) -> Document:
    package = resources.files("otel_audit.policy")
    resource = package.joinpath("defaults.yaml") if name == "default" else package.joinpath("packs", f"{name}.yaml")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or not resource.is_file():
        raise PolicyError.single(f"unknown policy pack {name!r}: available packs are {', '.join(pack_names())}",
                                 referrer)
    return parse(resource.read_bytes(), f"pack:{name}")


def _read_file(path: str, referrer: str) -> Document:
    try:
        data = FsPath(path).read_bytes()
    except FileNotFoundError:
        raise PolicyError.single(f"policy file {path!r} does not exist", referrer) from None
    except IsADirectoryError:
        raise PolicyError.single(f"policy file {path!r} is a directory", referrer) from None
    except OSError as exc:
        raise PolicyError.single(f"cannot read policy file {path!r}: {exc.strerror}", referrer) from None
    return parse(data, path, base_dir=str(FsPath(path).parent))


def looks_inline(source: str) -> bool:
    """Inline YAML/JSON rather than a file name: braces, several lines, or ``key: value``."""
    stripped = source.strip()
    return stripped.startswith(("{", "[")) or "\n" in stripped or bool(re.match(r"^[\w$-]+:\s", stripped))


def read_source(source: str) -> Document:
    """``OTEL_AUDIT_POLICY`` value -> document: ``pack:NAME``, an existing file, or inline text."""
    if source.startswith("pack:"):
        return _read_pack(source[5:], "OTEL_AUDIT_POLICY")
    if os.path.exists(source):
        return _read_file(source, "OTEL_AUDIT_POLICY")
    if looks_inline(source):
        return parse(source, INLINE_NAME)
    raise PolicyError.single(
        f"policy file {source!r} does not exist (expected a file path, inline YAML/JSON or pack:NAME)",
        "OTEL_AUDIT_POLICY")


# ---------------------------------------------------------------------------------------------
# Schema errors -> problems

_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "boolean": "true or false",
               "integer": "a whole number", "number": "a number", "null": "null"}
_PATTERN_HINTS = {
    "^[A-Za-z0-9][A-Za-z0-9._:-]*$": "an id (letters, digits, '.', '_', ':', '-'; starting with a letter or digit)",
    "^[a-z][a-z0-9_]*$": "an action name in lower_snake_case",
    "^([1-5]xx|[1-5][0-9][0-9]-[1-5][0-9][0-9])$": 'a status code (200), a class ("4xx") or a range ("500-599")',
}


def _kind(value: Any) -> str:
    if value is None:
        return "null (empty value)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({shown(value)})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__} value"


def _choice(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _type_fits(branch: Mapping[str, Any], instance: Any) -> bool:
    """Whether ``instance`` has the JSON type an anyOf branch wants (refs and nested anyOf followed)."""
    if "$ref" in branch:
        branch = schema()["$defs"][branch["$ref"].rsplit("/", 1)[-1]]
    if "type" in branch:
        types = [branch["type"]] if isinstance(branch["type"], str) else branch["type"]
        return any(_validator().is_type(instance, name) for name in types)
    if "anyOf" in branch:
        return any(_type_fits(sub, instance) for sub in branch["anyOf"])
    return True


def _describe(error: Any, doc: Document) -> list[Problem]:
    path = tuple(error.absolute_path)
    instance = error.instance
    kind = error.validator
    if kind in ("anyOf", "oneOf"):
        expected = error.schema.get("x-expected", "of the expected form")
        # Errors from the branch whose type fits say the most ("unknown key", "not one of ...").
        alternatives = error.schema.get(kind, [])
        fitting = [sub for sub in error.context or ()
                   if _type_fits(alternatives[sub.relative_schema_path[0]], instance)]
        if fitting and not error.schema.get("x-prefer-expected"):
            return list(dict.fromkeys(p for sub in fitting for p in _describe(sub, doc)))
        return [doc.problem(path, f"{_kind(instance)} is not {expected}")]
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        problems = []
        for key in instance:
            if key in error.schema.get("properties", {}):
                continue
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; expected one of: {', '.join(allowed)}"
            problems.append(doc.problem(path + (key,), f"unknown key {shown(key)}{suggestion}", key=True))
        return problems
    if kind == "required":
        return [doc.problem(path, f"missing required key {name!r}") for name in error.validator_value
                if name not in instance]
    if kind == "enum":
        choices = ", ".join(_choice(choice) for choice in error.validator_value)
        return [doc.problem(path, f"{shown(instance)} is not one of {choices}")]
    if kind == "const":
        return [doc.problem(path, f"{shown(instance)} is not supported: expected {_choice(error.validator_value)}")]
    if kind == "type":
        wanted = error.validator_value
        names = " or ".join(_TYPE_NAMES.get(t, t) for t in ([wanted] if isinstance(wanted, str) else wanted))
        return [doc.problem(path, f"expected {names}, got {_kind(instance)}")]
    if kind in ("minItems", "minLength", "minProperties"):
        return [doc.problem(path, "must not be empty")]
    if kind == "maxLength":
        return [doc.problem(path, f"is longer than {error.validator_value} characters")]
    if kind == "pattern":
        hint = _PATTERN_HINTS.get(error.validator_value, f"a value matching {error.validator_value}")
        return [doc.problem(path, f"{shown(instance)} is not {hint}")]
    if kind in ("minimum", "maximum"):
        low, high = error.schema.get("minimum"), error.schema.get("maximum")
        return [doc.problem(path, f"{shown(instance)} is out of range: expected {low} to {high}")]
    return [doc.problem(path, error.message)]  # pragma: no cover - every validator used is mapped above


def schema_problems(doc: Document) -> list[Problem]:
    problems: list[Problem] = []
    for error in _validator().iter_errors(doc.data):
        problems.extend(_describe(error, doc))
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line or 0, p.column or 0, p.path))


# ---------------------------------------------------------------------------------------------
# Normalisation of one document into a partial policy


def _tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else (value,)


def _status_ranges(value: Any) -> tuple[tuple[int, int], ...]:
    ranges = []
    for item in _tuple(value):
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


def _attributes(value: Any) -> tuple[tuple[str, Any], ...]:
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
        patterns = _tuple(value)
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
        methods = tuple(method.upper() for method in _tuple(value))
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
            categories=_tuple(spec.get("category")),
            actions=self.actions(path + ("action",), spec.get("action")),
            methods=self.methods(path + ("method",), spec.get("method")),
            paths=self.globs(path + ("path",), spec.get("path"), is_path=True),
            resource_types=self.globs(path + ("resource_type",), spec.get("resource_type")),
            actor_ids=tuple(str(v) for v in _tuple(spec.get("actor_id"))),
            actor_roles=_tuple(spec.get("actor_role")),
            outcomes=_tuple(spec.get("outcome")),
            status=self.checked(path + ("status",), lambda: _status_ranges(spec.get("status"))),
            db_operations=tuple(op.upper() for op in _tuple(spec.get("db_operation"))),
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
            attributes=_attributes(spec.get("attributes")),
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
        for index, spec in enumerate(_tuple(value)):
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
            for number, request in enumerate(_tuple(spec["request"])):
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
            attributes=_attributes(spec.get("attributes")),
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
                partial["defaults"]["attributes"] = _attributes(spec["attributes"])
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
        for number, text in enumerate(_tuple(spec.get("routes"))):
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
        raise PolicyError([doc.problem((), f"expected a mapping at the top level, got {_kind(doc.data)}")])
    problems = schema_problems(doc)
    failure_mode = doc.data.get("failure_mode") if doc.data.get("failure_mode") == "closed" else None
    if problems:
        raise PolicyError(problems, failure_mode)
    normaliser = _Normaliser(doc, prefix)
    partial = normaliser.run()
    if normaliser.problems:
        raise PolicyError(normaliser.problems, failure_mode)
    return partial


# ---------------------------------------------------------------------------------------------
# extends:, merging, environment overrides


def _deep_merge(base: Any, child: Any) -> Any:
    if isinstance(base, dict) and isinstance(child, dict):
        merged = dict(base)
        for key, value in child.items():
            merged[key] = _deep_merge(base.get(key), value) if key in base else value
        return merged
    return child


def merge(base: Mapping[str, Any], child: Mapping[str, Any], inherit_identity: bool = False) -> dict[str, Any]:
    """``child`` over ``base``: child rules and routes first (first match wins), maps merged."""
    out = {k: v for k, v in base.items() if inherit_identity or k not in ("id", "version", "description")}
    for key in ("id", "version", "description", "failure_mode"):
        if key in child:
            out[key] = child[key]
    for key in ("defaults", "actors"):
        if key in child or key in base:
            out[key] = {**base.get(key, {}), **child.get(key, {})}
    if "redaction" in child:
        out["redaction"] = _deep_merge(base.get("redaction", {}), child["redaction"])
    if "required_fields" in child:
        fields = dict(base.get("required_fields", {}))
        for category, names in child["required_fields"].items():
            fields[category] = tuple(dict.fromkeys(fields.get(category, ()) + names))
        out["required_fields"] = fields
    for key in ("rules", "routes"):
        out[key] = list(child.get(key, [])) + list(base.get(key, []))
    out["notes"] = tuple(base.get("notes", ())) + tuple(child.get("notes", ()))
    if "critical" in child or "critical" in base:  # what a parent marks critical stays critical
        parent, own = base.get("critical", {}), child.get("critical", {})
        out["critical"] = {key: tuple(dict.fromkeys(tuple(own.get(key, ())) + tuple(parent.get(key, ()))))
                           for key in ("routes", "tables")}
    return out


def _resolve(doc: Document, chain: tuple[str, ...], prefix: str) -> dict[str, Any]:
    partial = normalise(doc, prefix)
    data = doc.data
    parents = _tuple(data["extends"]) if "extends" in data else ((DEFAULT_PACK,) if doc.name != "pack:default" else ())
    base: dict[str, Any] = {}
    for index, parent in enumerate(parents):
        where = ("extends", index) if isinstance(data.get("extends"), list) else ("extends",)
        if parent.startswith("pack:"):
            try:
                parent_doc = _read_pack(parent[5:], doc.name)
            except PolicyError as exc:
                raise PolicyError([doc.problem(where, exc.problems[0].message)]) from None
        else:
            target = parent if os.path.isabs(parent) else os.path.join(doc.base_dir or ".", parent)
            if not os.path.exists(target):
                raise PolicyError([doc.problem(where, f"extended policy {parent!r} does not exist ({target})")])
            parent_doc = _read_file(target, doc.name)
        identity = parent_doc.name if parent.startswith("pack:") else os.path.realpath(parent_doc.name)
        if identity in chain:
            raise PolicyError([doc.problem(where, f"extends cycle: {' -> '.join(chain + (identity,))}")])
        if len(chain) >= MAX_EXTENDS_DEPTH:
            raise PolicyError([doc.problem(where, f"extends nested deeper than {MAX_EXTENDS_DEPTH} levels")])
        parent_partial = _resolve(parent_doc, chain + (identity,), f"{parent_doc.name}#")
        base = merge(parent_partial, base, inherit_identity=True) if base else parent_partial
    return merge(base, partial) if base else partial


@dataclass(frozen=True)
class EnvOverride:
    """An ``OTEL_AUDIT_POLICY_*`` variable overriding one common policy knob."""

    name: str
    section: tuple[str, ...]
    parse: Callable[[str], Any]
    description: str


def _words(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _tristate(value: str) -> Any:
    lowered = value.strip().lower()
    return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(lowered, lowered)


ENV_OVERRIDES: tuple[EnvOverride, ...] = (
    EnvOverride("OTEL_AUDIT_POLICY_DEFAULT_LEVEL", ("defaults", "level"), lambda v: v.strip().lower(),
                "Override the policy's `defaults.level` (none, metadata, request, full)."),
    EnvOverride("OTEL_AUDIT_POLICY_FAIL_MODE", ("failure_mode",), lambda v: v.strip().lower(),
                "Override the policy's `failure_mode` (open, closed)."),
    EnvOverride("OTEL_AUDIT_POLICY_ACTOR_SOURCES", ("actors", "sources"), _words,
                "Override `actors.sources`: comma-separated, e.g. `jwt:sub,session:user_id`."),
    EnvOverride("OTEL_AUDIT_POLICY_ADMIN_ROLES", ("actors", "admin_roles"), _words,
                "Override `actors.admin_roles`: comma-separated role names."),
    EnvOverride("OTEL_AUDIT_POLICY_ATTEMPTED_USERNAME", ("actors", "record_attempted_username"), _tristate,
                "Override `actors.record_attempted_username` (true, false, hmac)."),
)


def _env_partials(environ: Mapping[str, str]) -> list[dict[str, Any]]:
    partials = []
    for override in ENV_OVERRIDES:
        raw = environ.get(override.name)
        if raw is None or raw.strip() == "":
            continue
        value: Any = override.parse(raw)
        for key in reversed(override.section):
            value = {key: value}
        doc = Document(value, override.name)
        partials.append(normalise(doc, "env#"))
    return partials


def _finalise(partial: Mapping[str, Any], default_id: str, sources: tuple[str, ...]) -> PolicyModel:
    actors = dict(partial.get("actors", {}))
    admin_roles = tuple(actors.get("admin_roles", DEFAULT_ADMIN_ROLES))
    rules = tuple(_expand_admin(rule, admin_roles) for rule in partial.get("rules", []))
    return PolicyModel(
        id=str(partial.get("id") or default_id),
        version=str(partial.get("version", "0")),
        description=partial.get("description"),
        failure_mode=partial.get("failure_mode", "open"),
        defaults=Defaults(**partial.get("defaults", {})),
        redaction=partial.get("redaction", {}),
        required_fields=tuple(sorted((k, tuple(v)) for k, v in partial.get("required_fields", {}).items())),
        actors=ActorSettings(**actors),
        rules=rules,
        routes=tuple(partial.get("routes", [])),
        critical=Critical(**partial.get("critical", {})),
        sources=sources,
        notes=tuple(partial.get("notes", ())),
    )


def _expand_admin(rule: Rule, admin_roles: tuple[str, ...]) -> Rule:
    match = rule.match
    if ADMIN not in match.actor_roles and ADMIN not in match.actor_not_roles:
        return rule

    def expand(roles: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r for role in roles for r in (admin_roles if role == ADMIN else (role,))))

    from dataclasses import replace

    return replace(rule, match=replace(match, actor_roles=expand(match.actor_roles),
                                       actor_not_roles=expand(match.actor_not_roles)))


def _default_id(doc: Document) -> str:
    if doc.name.startswith("pack:"):
        return doc.name[5:]
    if doc.name == INLINE_NAME:
        return "inline"
    stem = FsPath(doc.name).stem
    return re.sub(r"[^A-Za-z0-9._:-]", "-", stem).lstrip("._:-") or "policy"


def load_model(source: str | None, environ: Mapping[str, str] | None = None) -> PolicyModel:
    """The normalised policy for an ``OTEL_AUDIT_POLICY`` value (None: the built-in default)."""
    env = os.environ if environ is None else environ
    try:
        doc = read_source(source) if source and source.strip() else _read_pack("default", "built-in")
        partial = _resolve(doc, (doc.name,), "")
        for overlay in _env_partials(env):
            partial = merge(partial, overlay, inherit_identity=True)
        return _finalise(partial, _default_id(doc), (doc.name,))
    except PolicyError:
        raise
    except RecursionError:
        raise PolicyError.single("policy nested too deeply", source or "built-in") from None
    except Exception as exc:  # noqa: BLE001 - a loader bug must still surface as a policy error
        raise PolicyError.single(f"internal error while loading the policy ({type(exc).__name__})",
                                 source if source and not looks_inline(source) else INLINE_NAME) from exc


def load_document(doc: Document, environ: Mapping[str, str] | None = None) -> PolicyModel:
    """Like :func:`load_model` for an already parsed document (tests, the CLI)."""
    partial = _resolve(doc, (doc.name,), "")
    for overlay in _env_partials({} if environ is None else environ):
        partial = merge(partial, overlay, inherit_identity=True)
    return _finalise(partial, _default_id(doc), (doc.name,))
