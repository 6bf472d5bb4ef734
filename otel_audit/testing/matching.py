"""Criteria over captured records, and failure messages that show the nearest records.

A failed ``assert_audited`` should say what *was* recorded: records are ranked by how many
criteria they meet, and each shows the fields that did not match, so "login recorded as
``login`` instead of ``login_failed``" reads straight off the message.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher
from fnmatch import fnmatchcase
from typing import Any, Callable, Mapping

Getter = Callable[[Mapping[str, Any]], Any]


def _attr(name: str) -> Getter:
    return lambda record: (record.get("attributes") or {}).get(name)


#: Criterion name -> (the field shown in messages, how to read it from a record).
FIELDS: dict[str, tuple[str, Getter]] = {
    "event": ("event_name", lambda record: record.get("event_name")),
    "category": ("audit.category", _attr("audit.category")),
    "action": ("audit.action", _attr("audit.action")),
    "outcome": ("audit.outcome", _attr("audit.outcome")),
    "reason": ("audit.outcome.reason", _attr("audit.outcome.reason")),
    "rule": ("audit.rule", _attr("audit.rule")),
    "level": ("audit.level", _attr("audit.level")),
    "origin": ("audit.origin", _attr("audit.origin")),
    "method": ("http.request.method", _attr("http.request.method")),
    "route": ("http.route", _attr("http.route")),
    "path": ("url.path", _attr("url.path")),
    "status": ("http.response.status_code", _attr("http.response.status_code")),
    "table": ("db.collection.name", _attr("db.collection.name")),
    "operation": ("db.operation.name", _attr("db.operation.name")),
    "target_type": ("audit.target.type", _attr("audit.target.type")),
    "target_id": ("audit.target.id", _attr("audit.target.id")),
    "severity": ("severity_text", lambda record: record.get("severity_text")),
    "body": ("body", lambda record: record.get("body")),
}
_GLOB_CHARS = "*?["


def _normal(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_normal(v) for v in value]
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def value_matches(expected: Any, actual: Any, route: bool = False) -> bool:
    """Equality, with globs for strings, predicates for callables and None meaning absent."""
    if callable(expected):
        try:
            return bool(expected(actual))
        except Exception:  # noqa: BLE001 - a predicate that cannot handle the value did not match
            return False
    if expected is None:
        return actual is None
    if route and isinstance(expected, str) and isinstance(actual, str):
        from otel_audit.policy.globs import normalise_route

        expected, actual = normalise_route(expected) or expected, normalise_route(actual) or actual
    if isinstance(expected, str) and isinstance(actual, str) and any(c in expected for c in _GLOB_CHARS):
        # exactly equal first: redaction markers and pseudonyms ("[HMAC:...]") read as glob classes
        return actual == expected or fnmatchcase(actual, expected)
    return _normal(expected) == _normal(actual)


@dataclass(frozen=True)
class Criterion:
    name: str  # as the test wrote it
    field: str  # as it appears in the record
    expected: Any
    getters: tuple[Getter, ...]
    route: bool = False

    def check(self, record: Mapping[str, Any]) -> tuple[bool, Any]:
        """(met, the value the record has)."""
        values = [getter(record) for getter in self.getters]
        for value in values:
            if value_matches(self.expected, value, self.route):
                return True, value
        shown = [v for v in values if v is not None]
        return False, (shown[0] if len(shown) == 1 else (shown or None))

    def shown_expected(self) -> str:
        if callable(self.expected):
            return getattr(self.expected, "__name__", "a predicate")
        return repr(self.expected)


class Criteria:
    def __init__(self, criteria: list[Criterion]) -> None:
        self.criteria = criteria

    @classmethod
    def parse(cls, given: Mapping[str, Any]) -> "Criteria":
        criteria = []
        for name, expected in given.items():
            if name == "attributes":
                if not isinstance(expected, Mapping):
                    raise TypeError("attributes= expects a mapping of attribute name to expected value")
                for attr, value in expected.items():
                    criteria.append(Criterion(f"attributes[{attr!r}]", attr, value, (_attr(attr),)))
            elif name == "actor":
                criteria.append(Criterion("actor", "enduser.id/user.name", expected,
                                          (_attr("enduser.id"), _attr("user.name"))))
            elif name in FIELDS:
                field, getter = FIELDS[name]
                criteria.append(Criterion(name, field, expected, (getter,), route=name == "route"))
            else:
                known = ", ".join(sorted([*FIELDS, "actor", "attributes", "count"]))
                raise TypeError(f"unknown audit criterion {name!r}; expected one of {known}")
        if not criteria:
            raise TypeError("give at least one criterion, e.g. event='audit.authentication.login_failed'")
        return cls(criteria)

    def matches(self, record: Mapping[str, Any]) -> bool:
        return all(criterion.check(record)[0] for criterion in self.criteria)

    def __str__(self) -> str:
        return ", ".join(f"{c.name}={c.shown_expected()}" for c in self.criteria)


def describe_record(record: Mapping[str, Any]) -> str:
    """One line: event, outcome, actor, what, status, rule."""
    attrs = record.get("attributes") or {}
    parts = [str(record.get("event_name")), f"outcome={attrs.get('audit.outcome')}"]
    actor = attrs.get("user.name") or attrs.get("enduser.id")
    if actor:
        parts.append(f"actor={actor}")
    if attrs.get("http.request.method"):
        parts.append(f"{attrs['http.request.method']} {attrs.get('http.route') or attrs.get('url.path') or ''}".rstrip())
    if attrs.get("db.collection.name"):
        parts.append(f"table={attrs['db.collection.name']}")
    if attrs.get("http.response.status_code") is not None:
        parts.append(f"status={attrs['http.response.status_code']}")
    parts.append(f"rule={attrs.get('audit.rule')} level={attrs.get('audit.level')}")
    return " ".join(parts)


def nearest_report(wanted: Criteria, records: list[Mapping[str, Any]], limit: int = 5) -> str:
    """The records meeting the most criteria (latest first on ties) and what each got wrong."""
    if not records:
        return ("no audit records were captured at all: is the app's framework adapter instrumented "
                "(ini audit_instrument) and does the policy audit these events?")
    total = len(wanted.criteria)
    scored = []
    for position, record in enumerate(records):
        checks = [(criterion, *criterion.check(record)) for criterion in wanted.criteria]
        met = sum(1 for _, ok, _ in checks if ok)
        # Ties: the record whose mismatching strings are closest (login vs login_failed) first.
        closeness = sum(SequenceMatcher(None, str(c.expected), str(got)).ratio()
                        for c, ok, got in checks if not ok and isinstance(c.expected, str))
        scored.append((met, closeness, position, record, checks))
    scored.sort(key=lambda item: (-item[0], -item[1], -item[2]))
    lines = [f"{len(records)} records were captured; the nearest:"]
    for met, _, position, record, checks in scored[:limit]:
        lines.append(f"  #{position} {describe_record(record)}  [{met}/{total} criteria met]")
        for criterion, ok, got in checks:
            if not ok:
                lines.append(f"      {criterion.name}: expected {criterion.shown_expected()}, "
                             f"got {got!r} ({criterion.field})")
    names = Counter(str(r.get("event_name")) for r in records)
    lines.append("all event names: " + ", ".join(f"{name} x{count}" if count > 1 else name
                                                 for name, count in names.items()))
    return "\n".join(lines)
