"""``detections convert``: deployable output per backend, each from the rules as pySigma parsed
them (Splunk and Loki through their pySigma backends and our pipelines; Datadog by our own code
in :mod:`.datadog`, from the same parsed rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import yaml

from .pack import LoadedRules, rule_name
from .pipelines import pipeline

SPLUNK_SEVERITY = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}


@dataclass
class Converted:
    """One alerting rule's query in a backend's language."""

    rule: Any
    query: str

    @property
    def name(self) -> str:
        return rule_name(self.rule)

    @property
    def level(self) -> str:
        return self.rule.level.name.lower() if self.rule.level else "medium"

    @property
    def timespan_seconds(self) -> int | None:
        span = getattr(self.rule, "timespan", None)
        return int(span.seconds) if span is not None else None


def _backend(name: str) -> Any:
    if name == "splunk":
        from sigma.backends.splunk import SplunkBackend

        return SplunkBackend(processing_pipeline=pipeline("splunk"))
    if name == "loki":
        from sigma.backends.loki import LogQLBackend

        return LogQLBackend(processing_pipeline=pipeline("loki"))
    raise ValueError(f"no pySigma backend for {name!r}")


def queries(loader: Callable[[], LoadedRules], backend: str) -> list[Converted]:
    """Every alerting rule converted on its own (with the rules it builds on), freshly parsed:
    a backend's pipeline changes the rule objects it converts."""
    from sigma.collection import SigmaCollection

    converted = []
    for name in [rule_name(r) for r in loader().alerting()]:
        loaded = loader()
        rule = loaded.rule(name)
        rule._output = True
        output = _backend(backend).convert(SigmaCollection(loaded.with_dependencies(rule)))
        converted.append(Converted(rule, output[-1]))  # the rule's own query comes last
    return converted


# -- Splunk: savedsearches.conf ---------------------------------------------------------------


def _cron(seconds: int | None) -> str:
    minutes = max(1, min(60, (seconds or 300) // 60))
    return "0 * * * *" if minutes >= 60 else f"*/{minutes} * * * *"


def splunk_savedsearches(loader: Callable[[], LoadedRules]) -> str:
    """One ``savedsearches.conf`` stanza per rule: the search, a schedule as often as the window
    (at most hourly), a look-back of the window, and an alert when the search returns a row (the
    threshold is in the search itself)."""
    stanzas = []
    for item in queries(loader, "splunk"):
        span = item.timespan_seconds
        lookback = f"-{span}s" if span else "-5m"
        search = " ".join(line.strip() for line in item.query.splitlines() if line.strip())
        description = " ".join((item.rule.description or item.rule.title).split())
        stanzas.append("\n".join([
            f"# sigma id {item.rule.id} ({item.name}), level {item.level}",
            f"[otel-audit - {item.rule.title}]",
            f"description = {description}",
            f"search = {search}",
            "enableSched = 1",
            f"cron_schedule = {_cron(span)}",
            f"dispatch.earliest_time = {lookback}",
            "dispatch.latest_time = now",
            "counttype = number of events",
            "relation = greater than",
            "quantity = 0",
            "alert.track = 1",
            f"alert.severity = {SPLUNK_SEVERITY.get(item.level, 3)}",
            "alert.suppress = 1",
            f"alert.suppress.period = {max(span or 300, 300)}s",
        ]))
    return "\n\n".join(stanzas) + "\n"


# -- Loki: ruler rule groups ------------------------------------------------------------------


def _is_metric(query: str) -> bool:
    return bool(re.match(r"\s*(sum|count|avg|min|max|rate)\b", query))


def _duration(seconds: int | None) -> str:
    seconds = seconds or 300
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def loki_rule_groups(loader: Callable[[], LoadedRules]) -> str:
    """A Loki ruler file: one group, one alerting rule per Sigma rule. A correlation's LogQL is
    already a metric query with its threshold; a plain rule counts its matches over 5 minutes."""
    rules = []
    for item in queries(loader, "loki"):
        expr = item.query if _is_metric(item.query) else f"sum(count_over_time({item.query} [5m])) > 0"
        rules.append({
            "alert": re.sub(r"[^A-Za-z0-9_]", "_", item.name),
            "expr": expr,
            "for": "0m",
            "labels": {"severity": item.level, "source": "otel-audit", "sigma_id": str(item.rule.id)},
            "annotations": {"summary": item.rule.title,
                            "description": " ".join((item.rule.description or item.rule.title).split()),
                            "window": _duration(item.timespan_seconds)},
        })
    return yaml.safe_dump({"groups": [{"name": "otel-audit", "interval": "1m", "rules": rules}]},
                          sort_keys=False, width=10_000)


def convert(loader: Callable[[], LoadedRules], backend: str, form: str = "terraform") -> str:
    """Deployable text for ``backend``: splunk, loki, or datadog (``form`` terraform or json)."""
    if backend == "splunk":
        return splunk_savedsearches(loader)
    if backend == "loki":
        return loki_rule_groups(loader)
    if backend == "datadog":
        from . import datadog

        loaded = loader()
        rules = loaded.alerting()
        return datadog.as_json(loaded, rules) + "\n" if form == "json" else datadog.as_terraform(loaded, rules)
    raise ValueError(f"unknown backend {backend!r}; expected splunk, loki or datadog")
