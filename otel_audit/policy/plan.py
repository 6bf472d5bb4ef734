"""``otel-audit policy plan OLD NEW --trail FILE``: what a policy change would change, shown on
recorded traffic (like ``terraform plan``), so a pull request reviews it on evidence.

Each record of the trail (the embedded sink's JSON lines or OTLP JSON, read as ``otel-audit
verify`` reads them) is turned back into the event the adapters handed over and replayed through
both policies' real Decide -> Enrich -> Redact steps (``policy explain``'s dry run). HTTP records
are replayed as the raw request when the old policy names that request exactly as the trail does
(so a change of route classification shows); otherwise (named by an auth signal, the manual API)
as recorded. Values the trail holds redacted are replayed as a probe string, so a key the new
policy stops redacting shows too. Lifecycle records (``audit_system``) are skipped.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from otel_audit.catalogue import ACTIONS
from otel_audit.event import Actor, AuditEvent, Change, DbInfo, HttpInfo, Source, Target
from otel_audit.policy.explain import dry_run

#: What replaces a value the trail holds redacted: a string no detector flags, only key rules.
PROBE = "otel-audit-plan-probe"
_PLACEHOLDER = re.compile(r"^\[(REDACTED|HMAC|MASKED|HASH)[:\]]")
#: Attribute prefixes the pipeline writes; the rest are the app's own attributes and are replayed.
_OURS = ("audit.", "ocsf.", "http.", "url.", "db.", "user.", "enduser.", "client.", "session.", "server.",
         "error.", "user_agent.")
_ORDER = ("no longer audited", "newly audited", "level", "event", "redaction")


class TrailError(ValueError):
    """The trail cannot be read; the message names file and line."""


@dataclass(frozen=True)
class Replay:
    event_name: str
    audited: bool
    level: str
    rule: str
    redacted: tuple[str, ...]
    keys: frozenset[str] = frozenset()  # attributes the record has (the level decides which)


@dataclass
class Difference:
    kind: str  # no longer audited | newly audited | level | event | redaction
    subject: str  # what the event was: name and request or table
    old: str
    new: str
    count: int = 1


@dataclass
class Plan:
    replayed: int = 0
    skipped: int = 0
    unchanged: int = 0
    not_from_old: int = 0  # records whose rule/level the old policy does not reproduce
    differences: list[Difference] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for difference in self.differences:
            totals[difference.kind] += difference.count
        return {kind: totals[kind] for kind in _ORDER}

    @property
    def drops(self) -> int:
        return self.counts()["no longer audited"]


def read_trail(path: str) -> list[Mapping[str, Any]]:
    """Attributes of each record (lifecycle ones included) of a sink or OTLP JSON file."""
    from otel_audit.delivery.canonical import read_exported

    try:
        return [record.attributes for record in read_exported(path)]
    except OSError as exc:
        raise TrailError(f"--trail {path}: cannot read it ({type(exc).__name__}: {exc.strerror})") from None
    except ValueError as exc:
        raise TrailError(f"--trail {exc}") from None


def _probed(value: Any) -> Any:
    if isinstance(value, str):
        return PROBE if _PLACEHOLDER.match(value) else value
    if isinstance(value, list):
        return [_probed(v) for v in value]
    if isinstance(value, dict):
        return {k: _probed(v) for k, v in value.items()}
    return value


def event_of(attributes: Mapping[str, Any], raw_request: bool = False) -> AuditEvent:
    """The event a record was made from (``raw_request``: the HTTP request before it was named)."""
    a = {key: _probed(value) for key, value in attributes.items()}
    headers = lambda prefix: {k[len(prefix):]: v[0] if isinstance(v, list) and len(v) == 1 else v  # noqa: E731
                              for k, v in a.items() if k.startswith(prefix)} or None
    http = None
    if a.get("http.request.method"):
        http = HttpInfo(method=a.get("http.request.method"), route=a.get("http.route"), path=a.get("url.path"),
                        status_code=a.get("http.response.status_code"), scheme=a.get("url.scheme"),
                        host=a.get("server.address"), query=a.get("url.query"),
                        request_headers=headers("http.request.header."), request_body=a.get("audit.request.body"),
                        response_headers=headers("http.response.header."), response_body=a.get("audit.response.body"))
    db = None
    if any(key.startswith("db.") for key in a):
        db = DbInfo(system=a.get("db.system.name"), namespace=a.get("db.namespace"),
                    collection=a.get("db.collection.name"), operation=a.get("db.operation.name"),
                    query_text=a.get("db.query.text"), row_count=a.get("audit.db.rows_affected"))
    target = None
    if any(key.startswith("audit.target.") for key in a):
        target = Target(a.get("audit.target.type"), a.get("audit.target.id"), a.get("audit.target.name"))
    category, action = a.get("audit.category", "http"), a.get("audit.action", "request")
    if raw_request:
        category, action = ("admin" if category == "admin" else "http"), "request"
    return AuditEvent(
        category=category, action=action, outcome=a.get("audit.outcome", "success"),
        outcome_reason=a.get("audit.outcome.reason"), origin=a.get("audit.origin", "http"),
        actor=Actor(id=a.get("enduser.id"), name=a.get("user.name"), roles=tuple(a.get("user.roles") or ()),
                    type=a.get("audit.actor.type"), session_id=a.get("session.id"),
                    source=a.get("audit.actor.source"), verified=a.get("audit.actor.verified")),
        source=Source(address=a.get("client.address"), port=a.get("client.port"),
                      user_agent=a.get("user_agent.original")),
        target=target, http=http, db=db, error_type=a.get("error.type"),
        changed_fields=tuple(a.get("audit.changes.fields") or ()),
        changes=[_change(entry) for entry in a.get("audit.changes") or () if isinstance(entry, dict)],
        attributes={k: v for k, v in a.items() if not k.startswith(_OURS)},
    )


def _change(entry: Mapping[str, Any]) -> Change:
    action = str(entry.get("action", "update_resource"))
    return Change(ACTIONS.get(action, ("data_modification",))[0], action, table=entry.get("table") or entry.get("type"),
                  type=entry.get("type"), id=entry.get("id"), fields=tuple(entry["fields"]) if entry.get("fields") else None,
                  rows=entry.get("rows"), values=entry.get("values"))


def replay(policy: Any, event: AuditEvent) -> Replay:
    from otel_audit.attributes import event_attributes

    result = dry_run(policy, copy.deepcopy(event))
    attributes = result["attributes"] or {}
    given = event_attributes(event, "full")  # before redaction: the probe where the trail held a redacted value
    probed = {key for key, value in attributes.items() if PROBE not in json.dumps(value, default=str)
              and PROBE in json.dumps(given.get(key), default=str)}
    redacted = tuple(sorted(probed | set(result["redacted"])))  # a placeholder replayed, or a value changed
    return Replay(result["event_name"], result["audited"], result["level"], result["rule"], redacted,
                  frozenset(attributes))


def _event_for(old: Any, attributes: Mapping[str, Any]) -> AuditEvent:
    """The raw request when the old policy names it as the trail does, else the named event."""
    named = event_of(attributes)
    if named.http is None or (named.category, named.action) in (("http", "request"), ("admin", "request")):
        return named
    raw = event_of(attributes, raw_request=True)
    if dry_run(old, copy.deepcopy(raw))["event_name"] == named.event_name:
        return raw
    return named


def _subject(attributes: Mapping[str, Any]) -> str:
    name = f"audit.{attributes.get('audit.category')}.{attributes.get('audit.action')}"
    if attributes.get("http.request.method"):
        return f"{name} {attributes['http.request.method']} {attributes.get('http.route') or attributes.get('url.path')}"
    if attributes.get("db.collection.name"):
        return f"{name} {attributes.get('db.operation.name', '')} {attributes['db.collection.name']}".rstrip()
    return name


def plan(old: Any, new: Any, records: Iterable[Mapping[str, Any]]) -> Plan:
    """Every difference between the two policies' decisions on the trail, identical ones counted once."""
    result = Plan()
    seen: dict[tuple[str, str, str, str], Difference] = {}
    for attributes in records:
        if attributes.get("audit.category") == "audit_system":
            result.skipped += 1
            continue
        result.replayed += 1
        event = _event_for(old, attributes)
        before, after = replay(old, event), replay(new, event)
        if (attributes.get("audit.rule"), attributes.get("audit.level")) != (before.rule, before.level):
            result.not_from_old += 1
        found = _differences(_subject(attributes), before, after)
        if not found:
            result.unchanged += 1
        for difference in found:
            key = (difference.kind, difference.subject, difference.old, difference.new)
            if key in seen:
                seen[key].count += 1
            else:
                seen[key] = difference
                result.differences.append(difference)
    result.differences.sort(key=lambda d: (_ORDER.index(d.kind), d.subject))
    return result


def _differences(subject: str, before: Replay, after: Replay) -> list[Difference]:
    decided = lambda r: f"{r.level} by rule {r.rule}" if r.audited else f"not audited (rule {r.rule})"  # noqa: E731
    if before.audited and not after.audited:
        return [Difference("no longer audited", subject, decided(before), decided(after))]
    if after.audited and not before.audited:
        return [Difference("newly audited", subject, decided(before), decided(after))]
    if not before.audited:
        return []
    found = []
    if before.level != after.level:
        found.append(Difference("level", subject, decided(before), decided(after)))
    if before.event_name != after.event_name:
        found.append(Difference("event", subject, before.event_name, after.event_name))
    both = before.keys & after.keys  # a key only one level writes is a level change, not a redaction one
    old_redacted = [key for key in before.redacted if key in both]
    new_redacted = [key for key in after.redacted if key in both]
    if old_redacted != new_redacted:
        found.append(Difference("redaction", subject, "redacted: " + (", ".join(old_redacted) or "-"),
                                "redacted: " + (", ".join(new_redacted) or "-")))
    return found


def report_text(old_name: str, new_name: str, old: Any, new: Any, trail: str, result: Plan) -> str:
    lines = [f"otel-audit policy plan: {old_name} ({old.id} {old.version}) -> {new_name} ({new.id} {new.version})",
             f"{result.replayed} events replayed from {trail} ({result.skipped} lifecycle records skipped)", ""]
    if result.not_from_old:
        lines[-1:] = [f"note: {result.not_from_old} records were not decided as {old_name} decides them (another "
                      "policy recorded them): the plan compares both policies on their facts", ""]
    marks = {"no longer audited": "-", "newly audited": "+"}
    for kind in _ORDER:
        selected = [d for d in result.differences if d.kind == kind]
        if not selected:
            continue
        title = kind if kind in marks else ("event name changes" if kind == "event" else f"{kind} changes")
        lines.append(f"{title} ({sum(d.count for d in selected)}):")
        for d in selected:
            lines.append(f"  {marks.get(kind, '~')} {d.count}x {d.subject}: {d.old} -> {d.new}")
        lines.append("")
    counts = result.counts()
    lines.append(f"Plan: {counts['newly audited']} newly audited, {counts['no longer audited']} no longer audited, "
                 f"{counts['level']} level changes, {counts['event']} event name changes, {counts['redaction']} "
                 f"redaction changes; {result.unchanged} unchanged.")
    return "\n".join(lines)


def report_json(old: Any, new: Any, trail: str, result: Plan) -> str:
    return json.dumps({
        "old": {"id": old.id, "version": old.version, "hash": old.hash},
        "new": {"id": new.id, "version": new.version, "hash": new.hash},
        "trail": trail, "replayed": result.replayed, "skipped": result.skipped, "unchanged": result.unchanged,
        "not_from_old": result.not_from_old,
        "counts": result.counts(),
        "differences": [d.__dict__ for d in result.differences],
    }, indent=2)
