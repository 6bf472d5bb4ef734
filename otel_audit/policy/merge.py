"""Putting partial policies together: ``extends:`` resolved (packs and files, cycles and depth
refused), a child over its parents (:func:`merge`), and the ``OTEL_AUDIT_POLICY_*`` overrides
(:data:`ENV_OVERRIDES`) as one more partial on top."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from otel_audit.policy.errors import PolicyError
from otel_audit.policy.normalise import as_tuple, normalise
from otel_audit.policy.source import Document, read_file, read_pack

DEFAULT_PACK = "pack:default"
MAX_EXTENDS_DEPTH = 8


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
    for key in ("defaults", "actors", "local_time"):
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


def resolve(doc: Document, chain: tuple[str, ...], prefix: str) -> dict[str, Any]:
    partial = normalise(doc, prefix)
    data = doc.data
    parents = as_tuple(data["extends"]) if "extends" in data else ((DEFAULT_PACK,) if doc.name != "pack:default" else ())
    base: dict[str, Any] = {}
    for index, parent in enumerate(parents):
        where = ("extends", index) if isinstance(data.get("extends"), list) else ("extends",)
        if parent.startswith("pack:"):
            try:
                parent_doc = read_pack(parent[5:], doc.name)
            except PolicyError as exc:
                raise PolicyError([doc.problem(where, exc.problems[0].message)]) from None
        else:
            target = parent if os.path.isabs(parent) else os.path.join(doc.base_dir or ".", parent)
            if not os.path.exists(target):
                raise PolicyError([doc.problem(where, f"extended policy {parent!r} does not exist ({target})")])
            parent_doc = read_file(target, doc.name)
        identity = parent_doc.name if parent.startswith("pack:") else os.path.realpath(parent_doc.name)
        if identity in chain:
            raise PolicyError([doc.problem(where, f"extends cycle: {' -> '.join(chain + (identity,))}")])
        if len(chain) >= MAX_EXTENDS_DEPTH:
            raise PolicyError([doc.problem(where, f"extends nested deeper than {MAX_EXTENDS_DEPTH} levels")])
        parent_partial = resolve(parent_doc, chain + (identity,), f"{parent_doc.name}#")
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


def env_partials(environ: Mapping[str, str]) -> list[dict[str, Any]]:
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
