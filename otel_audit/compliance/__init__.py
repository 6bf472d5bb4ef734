"""Compliance packs: which requirement each shipped policy pack addresses, by which rules, proven
by which tests - and what an application library cannot cover.

The mapping is data next to the packs (``otel_audit/policy/packs/traceability/NAME.yaml``,
checked against ``traceability.schema.json``). :func:`load_traceability` reads it,
:func:`missing_details` checks one record against the pack's per-record details (PCI DSS 10.2.2:
user, event type, time, outcome, origination, affected resource), and
:mod:`otel_audit.compliance.report` prints ``otel-audit compliance report``. docs/compliance.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

import yaml
from jsonschema import Draft202012Validator

STATUSES = ("covered", "partial", "out_of_scope")


class TraceabilityError(ValueError):
    """A traceability file that is missing or malformed; the message names the file and the path."""


@dataclass(frozen=True)
class Detail:
    """One detail every record must carry: ``any_of`` / ``all_of`` field references, and the
    ``any_of`` alternatives for records whose actor is of another kind (``by_actor_type``: the
    system itself outside a request is named by the resource's ``service.name``; an anonymous
    request says ``audit.actor.type: anonymous``)."""

    name: str
    any_of: tuple[str, ...] = ()
    all_of: tuple[str, ...] = ()
    by_actor_type: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def alternatives(self, actor_type: str | None) -> tuple[str, ...]:
        return dict(self.by_actor_type).get(actor_type or "", self.any_of)


@dataclass(frozen=True)
class Requirement:
    id: str
    title: str
    status: str  # covered | partial | out_of_scope
    rules: tuple[str, ...] = ()
    mechanisms: tuple[str, ...] = ()
    how: str | None = None
    limits: str | None = None
    reason: str | None = None
    tests: tuple[str, ...] = ()

    @property
    def in_scope(self) -> bool:
        return self.status != "out_of_scope"


@dataclass(frozen=True)
class Traceability:
    pack: str
    standard: str
    standard_version: str
    tag_prefix: str
    requirements: tuple[Requirement, ...]
    details_requirement: str | None = None
    details_title: str | None = None
    details: tuple[Detail, ...] = ()
    details_tests: tuple[str, ...] = ()
    source: str = field(default="", compare=False)

    def requirement(self, requirement_id: str) -> Requirement:
        for requirement in self.requirements:
            if requirement.id == requirement_id:
                return requirement
        raise KeyError(f"{self.pack}: no requirement {requirement_id!r}")

    def all_tests(self) -> list[str]:
        tests = list(self.details_tests)
        for requirement in self.requirements:
            tests.extend(requirement.tests)
        return list(dict.fromkeys(tests))


def _traceability_dir() -> Any:
    return resources.files("otel_audit.policy").joinpath("packs", "traceability")


def traced_packs() -> list[str]:
    """Names of the packs that have a traceability file (``pci-dss``, ``soc2``, ...)."""
    folder = _traceability_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    text = resources.files("otel_audit.compliance").joinpath("traceability.schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text))


@lru_cache(maxsize=16)
def load_traceability(pack: str) -> Traceability:
    """The traceability of ``pack`` (``pci-dss`` or ``pack:pci-dss``). Raises :class:`TraceabilityError`."""
    name = pack.removeprefix("pack:")
    resource = _traceability_dir().joinpath(f"{name}.yaml")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or not resource.is_file():
        available = ", ".join(traced_packs()) or "none"
        raise TraceabilityError(f"no compliance pack {name!r}: packs with a traceability mapping are {available}")
    source = f"otel_audit/policy/packs/traceability/{name}.yaml"
    try:
        data = yaml.safe_load(resource.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise TraceabilityError(f"{source}: not valid YAML ({exc})") from None
    return parse_traceability(data, source)


def parse_traceability(data: Any, source: str) -> Traceability:
    """Validate and build; every problem is listed with its path inside the document."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"{source}: {'/'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors]
        raise TraceabilityError("\n".join(lines))
    requirements = tuple(
        Requirement(
            id=str(item["id"]), title=" ".join(item["title"].split()), status=item["status"],
            rules=tuple(item.get("rules", ())), mechanisms=tuple(item.get("mechanisms", ())),
            how=item.get("how"), limits=item.get("limits"), reason=item.get("reason"),
            tests=tuple(item.get("tests", ())),
        )
        for item in data["requirements"]
    )
    problems = []
    seen: set[str] = set()
    for index, requirement in enumerate(requirements):
        where = f"{source}: requirements/{index} ({requirement.id})"
        if requirement.id in seen:
            problems.append(f"{where}: duplicate requirement id")
        seen.add(requirement.id)
        if requirement.status == "out_of_scope" and not requirement.reason:
            problems.append(f"{where}: out_of_scope needs a reason")
        if requirement.in_scope and not requirement.tests:
            problems.append(f"{where}: a {requirement.status} requirement needs at least one test")
        if requirement.in_scope and not (requirement.rules or requirement.mechanisms):
            problems.append(f"{where}: say which rules or mechanisms implement it")
        if requirement.status == "partial" and not requirement.limits:
            problems.append(f"{where}: a partial requirement says what is not covered (limits)")
    details = data.get("record_details") or {}
    for index, item in enumerate(details.get("details", ())):
        if not (item.get("any_of") or item.get("all_of")):
            problems.append(f"{source}: record_details/details/{index}: give any_of or all_of")
    if problems:
        raise TraceabilityError("\n".join(problems))
    return Traceability(
        pack=data["pack"], standard=data["standard"], standard_version=str(data["standard_version"]),
        tag_prefix=data["tag_prefix"], requirements=requirements,
        details_requirement=details.get("requirement"), details_title=details.get("title"),
        details=tuple(Detail(d["name"], tuple(d.get("any_of", ())), tuple(d.get("all_of", ())),
                             tuple((k, tuple(v)) for k, v in (d.get("by_actor_type") or {}).items()))
                for d in details.get("details", ())),
        details_tests=tuple(details.get("tests", ())), source=source,
    )


def field_value(record: Mapping[str, Any], reference: str) -> Any:
    """``record:NAME`` (a top-level record key), ``resource:NAME`` or an attribute name."""
    if reference.startswith("record:"):
        return record.get(reference[7:])
    if reference.startswith("resource:"):
        return (record.get("resource") or {}).get(reference[9:])
    return (record.get("attributes") or {}).get(reference)


def _present(value: Any) -> bool:
    return value not in (None, "", [], ())


def missing_details(record: Mapping[str, Any], pack: str = "pci-dss") -> list[str]:
    """Names of the pack's per-record details (PCI DSS 10.2.2) this record lacks; [] when complete.

    ``record`` is a record in the embedded sink's shape (what ``audit_trail.records`` and
    ``otel-audit records --json`` give)."""
    trace = load_traceability(pack)
    actor_type = (record.get("attributes") or {}).get("audit.actor.type")
    missing = []
    for detail in trace.details:
        alternatives = detail.alternatives(actor_type)
        ok = all(_present(field_value(record, ref)) for ref in detail.all_of)
        if alternatives:
            ok = ok and any(_present(field_value(record, ref)) for ref in alternatives)
        if not ok:
            missing.append(detail.name)
    return missing


__all__ = [
    "Detail",
    "Requirement",
    "STATUSES",
    "Traceability",
    "TraceabilityError",
    "field_value",
    "load_traceability",
    "missing_details",
    "parse_traceability",
    "traced_packs",
]
