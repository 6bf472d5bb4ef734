"""The published JSON Schema, and its errors said as problems a policy author can act on: each
names the path, what was expected and the line/column (``unknown key 'levle'; did you mean
'level'?``, ``'sometimes' is not one of none, metadata, request, full``)."""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from jsonschema import Draft202012Validator

from otel_audit.policy.errors import Problem, shown
from otel_audit.policy.source import Document


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The published JSON Schema (``otel_audit/policy/schema.json``)."""
    return json.loads(resources.files("otel_audit.policy").joinpath("schema.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())



_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "boolean": "true or false",
               "integer": "a whole number", "number": "a number", "null": "null"}
_PATTERN_HINTS = {
    "^[A-Za-z0-9][A-Za-z0-9._:-]*$": "an id (letters, digits, '.', '_', ':', '-'; starting with a letter or digit)",
    "^[a-z][a-z0-9_]*$": "an action name in lower_snake_case",
    "^([1-5]xx|[1-5][0-9][0-9]-[1-5][0-9][0-9])$": 'a status code (200), a class ("4xx") or a range ("500-599")',
}


def kind_of(value: Any) -> str:
    """What a value is, said in a message (``a string ('x')``, ``null (empty value)``)."""
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
        return [doc.problem(path, f"{kind_of(instance)} is not {expected}")]
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
        return [doc.problem(path, f"expected {names}, got {kind_of(instance)}")]
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

