"""``detections test``: every alerting rule converted by pySigma's SQLite backend and run by
SQLite over a recorded trail. What fires is an :class:`Alert` with the rule, the group keys,
the window and the records (event ids, actors) behind it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from .pack import LoadedRules, rule_name
from .trail import TrailRecord, load


@dataclass
class Alert:
    rule: str  # the rule's name
    rule_id: str
    title: str
    level: str
    group: dict[str, Any] = field(default_factory=dict)
    window_start: str | None = None  # ISO 8601 UTC
    window_end: str | None = None
    event_ids: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sql_for(loaded: LoadedRules, rule: Any) -> str:
    """The SQLite query of one alerting rule (for a correlation: with the rules it builds on)."""
    from sigma.backends.sqlite import sqliteBackend
    from sigma.collection import SigmaCollection

    rule._output = True  # a correlation another one builds on is an alert of its own here too
    queries = sqliteBackend().convert(SigmaCollection(loaded.with_dependencies(rule)))
    return queries[-1]  # the rule's own query comes after those of the rules it builds on


def referenced_fields(loaded: LoadedRules) -> set[str]:
    """Every field a rule matches, groups or counts on (so the table has a column for each)."""
    from sigma.correlations import SigmaCorrelationRule
    from sigma.rule import SigmaDetection, SigmaDetectionItem

    names: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, SigmaDetection):
            for sub in item.detection_items:
                walk(sub)
        elif isinstance(item, SigmaDetectionItem) and item.field:
            names.add(item.field)

    for rule in loaded.collection.rules:
        if isinstance(rule, SigmaCorrelationRule):
            names.update(rule.group_by or [])
            if rule.condition.fieldref:
                names.add(rule.condition.fieldref)
        else:
            for detection in rule.detection.detections.values():
                walk(detection)
    return names


def _nano_iso(unix_nano: int) -> str:
    return datetime.fromtimestamp(unix_nano / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds")


def _seconds_iso(seconds: Any) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc).isoformat(timespec="milliseconds")


def _row_ids(evidence: Any) -> list[int]:
    """pySigma's evidence ids (``e:0:<rowid>``, nested for chained correlations) -> rowids."""
    ids = json.loads(evidence) if isinstance(evidence, str) else list(evidence or [])
    rows: list[int] = []
    for value in ids:
        tail = str(value).rsplit(":", 1)[-1]
        if tail.isdigit():
            rows.append(int(tail))
    return sorted(set(rows))


def _alert(rule: Any, rows: list[int], records: list[TrailRecord], **facts: Any) -> Alert:
    chosen = [records[r - 1] for r in rows if 0 < r <= len(records)]
    if chosen:  # the window the alert is about: its first and last record
        facts["window_start"] = _nano_iso(min(c.time_unix_nano for c in chosen))
        facts["window_end"] = _nano_iso(max(c.time_unix_nano for c in chosen))
    actors = sorted({str(a) for a in (c.attributes.get("user.name") or c.attributes.get("enduser.id") for c in chosen) if a})
    return Alert(rule=rule_name(rule), rule_id=str(rule.id), title=rule.title,
                 level=rule.level.name.lower() if rule.level else "", actors=actors,
                 event_ids=[str(c.attributes.get("audit.event_id")) for c in chosen if c.attributes.get("audit.event_id")],
                 **facts)


def _run(db: sqlite3.Connection, rule: Any, sql: str, records: list[TrailRecord]) -> list[Alert]:
    from sigma.correlations import SigmaCorrelationRule

    if not isinstance(rule, SigmaCorrelationRule):  # a plain rule: each matching record is an alert
        head = "SELECT * FROM logs"
        if not sql.startswith(head):  # the row ids are read by rewriting the backend's select list
            raise RuntimeError(f"unexpected SQLite conversion of {rule_name(rule)}: {sql[:80]}")
        cursor = db.execute("SELECT rowid, timestamp FROM logs" + sql[len(head):])
        return [_alert(rule, [rowid], records, window_start=_ts(stamp), window_end=_ts(stamp))
                for rowid, stamp in cursor.fetchall()]
    cursor = db.execute(sql)
    columns = [d[0] for d in cursor.description]
    alerts = []
    for values in cursor.fetchall():
        row = dict(zip(columns, values))
        rows = _row_ids(row.get("event_ids"))
        alerts.append(_alert(rule, rows, records, group=_group(json.loads(row.get("group_keys") or "{}"), rows, records),
                             window_start=_seconds_iso(row.get("window_start")),
                             window_end=_seconds_iso(row.get("window_end"))))
    return _merge_overlapping(alerts)


def _group(keys: dict[str, Any], rows: list[int], records: list[TrailRecord]) -> dict[str, Any]:
    """The group keys as recorded: SQLite's conversion compares them case-blind (Sigma's rule)
    and reports them lower-cased; an [HMAC:...] pseudonym is shown as it is in the trail."""
    shown = dict(keys)
    for key, value in keys.items():
        originals = {records[r - 1].attributes.get(key) for r in rows if 0 < r <= len(records)}
        originals = {v for v in originals if v is not None and str(v).lower() == str(value).lower()}
        if len(originals) == 1:
            shown[key] = originals.pop()
    return shown


def _ts(stamp: str) -> str:
    return stamp.replace(" ", "T") + "+00:00"


def _merge_overlapping(alerts: list[Alert]) -> list[Alert]:
    """SQLite's conversion reports each sliding window that qualifies; one burst is one alert."""
    merged: list[Alert] = []
    for alert in alerts:
        previous = next((m for m in reversed(merged) if m.group == alert.group and m.window_end and alert.window_start
                         and alert.window_start <= m.window_end), None)
        if previous is None:
            merged.append(alert)
            continue
        previous.window_end = max(previous.window_end or "", alert.window_end or "")
        previous.event_ids = list(dict.fromkeys(previous.event_ids + alert.event_ids))
        previous.actors = sorted(set(previous.actors) | set(alert.actors))
    return merged


def evaluate(loader: Callable[[], LoadedRules], records: list[TrailRecord]) -> list[Alert]:
    """Alerts of every alerting rule over ``records``. ``loader`` gives freshly parsed rules
    (conversion changes the rule objects it works on, so each rule gets its own parse)."""
    names = [rule_name(r) for r in loader().alerting()]
    fields = referenced_fields(loader())
    db = load(records, fields)
    alerts: list[Alert] = []
    try:
        for name in names:
            loaded = loader()
            rule = loaded.rule(name)
            alerts.extend(_run(db, rule, sql_for(loaded, rule), records))
    finally:
        db.close()
    return alerts
