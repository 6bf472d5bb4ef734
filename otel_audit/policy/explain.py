"""Dry runs of the real pipeline for ``otel-audit policy explain`` and ``policy test``.

An event given as JSON/YAML goes through the same steps the runtime uses - Decide (route
classification + first matching rule), Enrich, MarkIncomplete, Redact - and stops before Emit.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from otel_audit.attributes import event_attributes
from otel_audit.catalogue import ACTIONS
from otel_audit.event import Actor, AuditEvent, Change, DbInfo, HttpInfo, Source, Target
from otel_audit.pipeline import Enrich, Redact
from otel_audit.policy.compiled import CompiledPolicy
from otel_audit.policy.errors import shown
from otel_audit.policy.required import MarkIncomplete

_PARTS = {"actor": Actor, "source": Source, "target": Target, "http": HttpInfo, "db": DbInfo}
_SCALARS = ("category", "action", "outcome", "outcome_reason", "error_type", "message", "origin")


class EventSpecError(ValueError):
    """An event description that does not fit the AuditEvent model; says where and why."""


def event_from_dict(spec: Any, where: str = "event") -> AuditEvent:
    """An :class:`AuditEvent` from a plain mapping (``actor``/``http``/... as nested mappings).

    ``actor_before`` (an id) is the actor before the request, used by ``actor_changed`` conditions.
    """
    if not isinstance(spec, Mapping):
        raise EventSpecError(f"{where}: expected a mapping, got {type(spec).__name__}")
    allowed = set(_SCALARS) | set(_PARTS) | {"attributes", "actor_before", "changed_fields", "changes"}
    unknown = sorted(str(key) for key in spec if key not in allowed)
    if unknown:
        raise EventSpecError(f"{where}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(allowed))}")
    for key in ("category", "action"):
        if not isinstance(spec.get(key), str) or not spec.get(key):
            raise EventSpecError(f"{where}.{key}: required, a non-empty string")
    kwargs: dict[str, Any] = {key: spec[key] for key in _SCALARS if key in spec}
    for key, cls in _PARTS.items():
        if key in spec:
            kwargs[key] = _part(cls, spec[key], f"{where}.{key}")
    if "outcome" not in kwargs:  # as the HTTP adapters would derive it
        http = kwargs.get("http")
        if http is not None and http.status_code is not None:
            from otel_audit.outcome import outcome_for_status

            kwargs["outcome"], kwargs["outcome_reason"] = outcome_for_status(http.status_code)
        else:
            kwargs["outcome"] = "success"
    kwargs["attributes"] = dict(spec.get("attributes") or {})
    if "actor_before" in spec:
        kwargs["attributes"]["audit.actor.before"] = spec["actor_before"]
    if "changed_fields" in spec:
        kwargs["changed_fields"] = tuple(spec["changed_fields"])
    if "changes" in spec:
        kwargs["changes"] = _changes(spec["changes"], f"{where}.changes")
    return AuditEvent(**kwargs)


def _changes(value: Any, where: str) -> list[Change]:
    """``changes`` as a list of Change mappings (category defaults from the action)."""
    if not isinstance(value, list):
        raise EventSpecError(f"{where}: expected a list of changes, got {type(value).__name__}")
    changes = []
    for index, item in enumerate(value):
        if isinstance(item, Mapping) and "category" not in item and isinstance(item.get("action"), str):
            item = {"category": ACTIONS.get(item["action"], ("data_modification",))[0], **item}
        change = _part(Change, item, f"{where}[{index}]")
        if change.fields is not None:
            change.fields = tuple(change.fields)
        changes.append(change)
    return changes


def _part(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, Mapping):
        raise EventSpecError(f"{where}: expected a mapping, got {type(value).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    for key in value:
        if key not in names:
            raise EventSpecError(f"{where}: unknown key {key!r}; expected one of {', '.join(sorted(names))}")
    data = dict(value)
    if cls is Actor and "roles" in data:
        data["roles"] = tuple(data["roles"] if isinstance(data["roles"], list) else [data["roles"]])
        data.setdefault("type", "user" if data.get("id") else "anonymous")
    return cls(**data)


def dry_run(policy: CompiledPolicy, event: AuditEvent, redactor: Any = None) -> dict[str, Any]:
    """What the runtime would do with ``event``: classification, rule, level, and the record's
    attributes after redaction (``None`` attributes when not audited)."""
    if redactor is None:
        from otel_audit.redaction import Redactor

        redactor = Redactor.from_config(policy.redaction)
    original = f"{event.category}.{event.action}"
    explanation = policy.explain(event)
    result: dict[str, Any] = {
        "event_name": event.event_name,
        "original": original,
        "outcome": event.outcome,
        "rule": explanation.rule_id,
        "why": explanation.why,
        "audited": explanation.decision is not None,
        "level": explanation.decision.level if explanation.decision is not None else "none",
        "attributes": None,
        "redacted": [],
        "left_out_by_level": [],
    }
    if explanation.classification is not None:
        result["classified_by"] = explanation.classification.route.id
    if explanation.decision is None:
        return result
    event.decision = explanation.decision
    for step in (Enrich(policy), MarkIncomplete(policy)):
        event = step(event)
    before = dict(event.record.attributes)
    event = Redact(redactor)(event)
    after = event.record.attributes
    result["attributes"] = after
    result["redacted"] = sorted(key for key in before if key not in after or after[key] != before[key])
    everything = event_attributes(event, "full")
    result["left_out_by_level"] = sorted(key for key in everything if key not in before)
    return result


def compare(expected: Mapping[str, Any], actual: Mapping[str, Any], where: str = "expect") -> list[str]:
    """Mismatches between a golden case's ``expect`` and a dry run, one line each."""
    problems = []
    for key, want in expected.items():
        if key == "attributes":
            got_attrs = actual.get("attributes") or {}
            for name, value in (want or {}).items():
                got = got_attrs.get(name, "<absent>")
                if _normal(got) != _normal(value):
                    problems.append(f"{where}.attributes[{name!r}]: expected {shown(value)}, got {shown(got)}")
        elif key == "absent":
            got_attrs = actual.get("attributes") or {}
            for name in want or []:
                if name in got_attrs:
                    problems.append(f"{where}.absent: {name!r} is present ({shown(got_attrs[name])})")
        elif key in ("event_name", "rule", "level", "audited", "outcome", "classified_by", "redacted"):
            if _normal(actual.get(key)) != _normal(want):
                problems.append(f"{where}.{key}: expected {shown(want)}, got {shown(actual.get(key))}")
        else:
            problems.append(f"{where}: unknown expectation {key!r}; expected event_name, rule, level, audited, "
                            "outcome, classified_by, redacted, attributes, absent")
    return problems


def _normal(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_normal(v) for v in value]
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value
