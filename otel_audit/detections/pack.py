"""The rule pack and a team's own rule files, parsed by pySigma into one collection.

A team's rule whose ``name`` (or ``id``) equals a shipped rule's replaces it: that is how a
threshold is tuned (copy the correlation, change ``condition`` or ``timespan``) without editing
the package. Every problem is a :class:`RuleError` naming the file and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

PACK_DIR = Path(__file__).with_name("rules")

#: Attribute namespaces the records carry (docs/attributes.md); a field outside them is a typo
#: that would make a rule silently never match.
KNOWN_PREFIXES = ("audit.", "audit_system.", "enduser.", "user.", "client.", "http.", "url.", "db.", "session.",
                  "server.", "error.", "ocsf.", "user_agent.", "event_name", "service.", "deployment.")

#: Inside ``audit.*``, where a typo is likeliest (``audit.acton``): the attributes and attribute
#: families records carry (docs/attributes.md, docs/delivery.md).
AUDIT_FIELDS = frozenset({
    "audit.event_id", "audit.category", "audit.action", "audit.outcome", "audit.outcome.reason", "audit.level",
    "audit.rule", "audit.origin", "audit.tags", "audit.via", "audit.attempted_username", "audit.changes",
    "audit.incomplete",
})
AUDIT_FAMILIES = ("audit.actor.", "audit.target.", "audit.role.", "audit.changes.", "audit.policy.", "audit.db.",
                  "audit.http.", "audit.request.", "audit.response.", "audit.classification.", "audit.incomplete.",
                  "audit.token.", "audit.redaction.", "audit.chain.", "audit.checkpoint.", "audit.lost.",
                  "audit.previous.", "audit.orm.", "audit.local_time.")

REQUIRED_KEYS = ("title", "id", "description", "level")


class RuleError(ValueError):
    """A rule file that cannot be used: ``str()`` names the file and the problem."""


@dataclass
class LoadedRules:
    """The parsed collection and where each rule came from."""

    collection: Any  # sigma.collection.SigmaCollection
    sources: dict[str, Path] = field(default_factory=dict)  # rule name -> file
    replaced: list[str] = field(default_factory=list)  # shipped rules a team file replaced

    def rule(self, name: str) -> Any:
        return next(r for r in self.collection.rules if rule_name(r) == name)

    def alerting(self) -> list[Any]:
        """Rules that raise alerts: every correlation, and each plain rule no correlation uses."""
        from sigma.correlations import SigmaCorrelationRule

        used = {rule_name(ref.rule) for r in self.collection.rules if isinstance(r, SigmaCorrelationRule)
                for ref in r.rules}
        return [r for r in self.collection.rules if isinstance(r, SigmaCorrelationRule) or rule_name(r) not in used]

    def with_dependencies(self, rule: Any) -> list[Any]:
        """``rule`` and, for a correlation, every rule it builds on (depth first, dependencies first)."""
        from sigma.correlations import SigmaCorrelationRule

        ordered: list[Any] = []

        def visit(current: Any) -> None:
            if isinstance(current, SigmaCorrelationRule):
                for ref in current.rules:
                    visit(ref.rule)
            if all(current is not seen for seen in ordered):
                ordered.append(current)

        visit(rule)
        return ordered


def rule_name(rule: Any) -> str:
    """The name correlations refer to a rule by (``name``, else its ``id``)."""
    return str(rule.name or rule.id)


def _rule_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise RuleError(f"{path}: no such rule file or directory")
    return files


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise RuleError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot read ({exc})") from None
    for index, doc in enumerate(docs, start=1):
        if not isinstance(doc, dict):
            raise RuleError(f"{path}: document {index}: expected a Sigma rule (a mapping), got {type(doc).__name__}")
    if not docs:
        raise RuleError(f"{path}: no rule in the file")
    return docs


def _check_document(path: Path, index: int, doc: dict[str, Any]) -> None:
    label = f"{path}: rule {doc.get('name') or doc.get('title') or index!r}"
    missing = [key for key in REQUIRED_KEYS if key not in doc]
    if missing:
        raise RuleError(f"{label}: missing {', '.join(missing)} (every otel-audit rule says what it is and how bad)")
    if "correlation" not in doc and "detection" not in doc:
        raise RuleError(f"{label}: neither a detection nor a correlation section")
    for name in _fields_named(doc):
        typo = name.startswith("audit.") and name not in AUDIT_FIELDS and not name.startswith(AUDIT_FAMILIES)
        if typo or not name.startswith(KNOWN_PREFIXES):
            raise RuleError(f"{label}: field {name!r} is no otel-audit record attribute (docs/attributes.md); "
                            "a rule on it would never match")


def _fields_named(doc: dict[str, Any]) -> list[str]:
    names: list[str] = []
    detection = doc.get("detection") or {}
    for key, value in detection.items() if isinstance(detection, dict) else ():
        if key == "condition" or key == "timeframe":
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                names.extend(str(k).split("|", 1)[0] for k in item)
    correlation = doc.get("correlation") or {}
    if isinstance(correlation, dict):
        names.extend(str(g) for g in correlation.get("group-by") or [])
        condition = correlation.get("condition")
        if isinstance(condition, dict) and "field" in condition:
            names.append(str(condition["field"]))
    return names


def _parse(path: Path, index: int, doc: dict[str, Any]) -> Any:
    from sigma.correlations import SigmaCorrelationRule
    from sigma.exceptions import SigmaError
    from sigma.exceptions import SigmaRuleLocation
    from sigma.rule import SigmaRule

    _check_document(path, index, doc)
    try:
        kind = SigmaCorrelationRule if "correlation" in doc else SigmaRule
        rule = kind.from_dict(doc, collect_errors=False, source=SigmaRuleLocation(str(path)))
        if kind is SigmaRule:
            for condition in rule.detection.parsed_condition:
                condition.parsed  # noqa: B018 - parsed lazily: a condition naming no detection fails here
        return rule
    except SigmaError as exc:
        raise RuleError(f"{path}: rule {doc.get('name') or doc.get('title')!r}: {_sigma_message(exc)}") from None


def _sigma_message(exc: Exception) -> str:
    text = str(exc)
    return text.split(" in file ")[0] if " in file " in text else text  # pySigma appends the location itself


def load_rules(extra: Iterable[str | Path] = (), include_pack: bool = True) -> LoadedRules:
    """The shipped pack (unless ``include_pack`` is false) plus the rule files or directories in
    ``extra``; later rules with the same name replace earlier ones."""
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError

    files = (_rule_files([PACK_DIR]) if include_pack else []) + _rule_files(Path(p) for p in extra)
    by_name: dict[str, Any] = {}
    sources: dict[str, Path] = {}
    replaced: list[str] = []
    for path in files:
        for index, doc in enumerate(_documents(path), start=1):
            rule = _parse(path, index, doc)
            name = rule_name(rule)
            if name in by_name:
                if sources[name] == path:
                    raise RuleError(f"{path}: two rules named {name!r}")
                replaced.append(name)
            by_name[name] = rule
            sources[name] = path
    if not by_name:
        raise RuleError("no rules: the pack was left out and no --rules file holds any")
    _check_references(by_name, sources)
    try:
        collection = SigmaCollection(list(by_name.values()))
        collection.resolve_rule_references()
    except SigmaError as exc:
        culprit = next((sources[n] for n in sources if n in str(exc) or str(by_name[n].id) in str(exc)), None)
        raise RuleError(f"{culprit or 'rules'}: {_sigma_message(exc)}") from None
    _check_correlation_targets(collection, sources)
    return LoadedRules(collection, sources, replaced)


def _check_references(by_name: dict[str, Any], sources: dict[str, Path]) -> None:
    from sigma.correlations import SigmaCorrelationRule

    known = set(by_name) | {str(r.id) for r in by_name.values()}
    for name, rule in by_name.items():
        if isinstance(rule, SigmaCorrelationRule):
            for ref in rule.rules:
                if str(ref.reference) not in known:
                    raise RuleError(f"{sources[name]}: rule {name!r} builds on {ref.reference!r}, which no rule file "
                                    "defines (rules are referred to by name or id)")


def _check_correlation_targets(collection: Any, sources: dict[str, Path]) -> None:
    from sigma.correlations import SigmaCorrelationRule

    for rule in collection.rules:
        if isinstance(rule, SigmaCorrelationRule) and not rule.group_by:
            raise RuleError(f"{sources[rule_name(rule)]}: rule {rule_name(rule)!r}: a correlation needs group-by "
                            "(the actor, address or account the alert is about)")
