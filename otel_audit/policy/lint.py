"""``otel-audit policy lint``: rules that load fine but can never do what they say.

A policy can be valid and still match nothing: an action no adapter or route ever names, a rule
behind an earlier one that matches everything it would (first match decides, so it is
unreachable), a category/action pair that cannot occur; and, given the app (``--app``), a path glob
no route of it has, or a rule no request to any of its routes and no change to any of its tables
would match (the events ``otel-audit coverage`` builds: every route and table, for an admin, a
user and an anonymous caller, succeeding, denied and failing). Each finding names the rule and
why; ``policy validate`` prints them as warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Sequence

from otel_audit.catalogue import ACTIONS
from otel_audit.policy.compiled import IMPLIED_HTTP_ACTIONS
from otel_audit.policy.globs import compile_globs, normalise_route
from otel_audit.policy.loader import load_model
from otel_audit.policy.source import pack_names
from otel_audit.policy.model import Match, PolicyModel, Rule

_GLOB_CHARS = frozenset("*?{")
#: Categories whose unclassified ``request`` events also show rules the method's CRUD verb.
_REQUEST_CATEGORIES = ("http", "admin")


@dataclass(frozen=True)
class Finding:
    code: str  # unknown-action | shadowed | impossible-pair | no-route | no-event
    rule: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] rule {self.rule}: {self.message}"


def possible_pairs(model: PolicyModel) -> set[tuple[str, str]]:
    """(category, action) pairs an event can have: the catalogue's, request verbs, route classifications."""
    pairs = {(category, action) for action, (category, _ocsf, _text) in ACTIONS.items()}
    for category in _REQUEST_CATEGORIES:
        pairs.add((category, "request"))
        pairs.update((category, verb) for verb in IMPLIED_HTTP_ACTIONS.values())
    for route in model.routes:
        pairs.add((route.category, route.action))
        if route.failure_action:
            pairs.add((route.category, route.failure_action))
    return pairs


#: Categories whose events the app's routes and tables give rise to as coverage builds them; a rule
#: on others (authentication signals, lifecycle, manual records) is not judged by ``no-event``.
_SEEN_CATEGORIES = frozenset({"http", "admin", "data_modification", "data_access"})


def lint(model: PolicyModel, app: Any = None, policy: Any = None) -> list[Finding]:
    """Every finding, rule by rule, in policy order. ``app``: the app's ``coverage.AppInventory``
    (with ``policy``, the compiled policy, to build and classify its events)."""
    pairs = possible_pairs(model)
    actions = {action for _category, action in pairs}
    templates = None if app is None else sorted({normalise_route(r.route) or r.route for r in app.routes})
    matched = _matched_rules(policy, app) if app is not None and policy is not None else None
    inherited = inherited_rule_ids(model)
    findings: list[Finding] = []
    for index, rule in enumerate(model.rules):
        findings.extend(_unknown_actions(rule, actions))
        findings.extend(_impossible_pairs(rule, pairs, actions))
        # the policy's own rule overriding an inherited (pack) rule is the point of putting own
        # rules first, not a mistake; any other shadowing is reported
        shadow = next((earlier for earlier in model.rules[:index]
                       if not (rule.id in inherited and earlier.id not in inherited)
                       and covers(earlier.match, rule.match) and _decides(earlier) != _decides(rule)), None)
        if shadow is not None:
            findings.append(Finding("shadowed", rule.id, f"unreachable: rule {shadow.id} comes first and matches "
                                    "every event this one would (first match decides)"))
        if rule.id in inherited:  # a pack's rule is written for every app: not judged against this one
            continue
        if templates is not None and rule.match.paths:
            pattern = compile_globs(rule.match.paths)
            if pattern is not None and not any(pattern.match(t) for t in templates):
                findings.append(Finding("no-route", rule.id, f"path {', '.join(rule.match.paths)} matches no route "
                                        f"template of the app ({len(templates)} templates)"))
                continue
        if (matched is not None and index not in matched and _judged_by_events(rule)
                and not any(f.rule == rule.id for f in findings)):
            findings.append(Finding("no-event", rule.id, f"no request to the app's {len(templates or ())} route "
                                    f"templates and no change to its {len(app.tables)} tables matches it"))
    return findings


def inherited_rule_ids(model: PolicyModel) -> frozenset[str]:
    """Ids of the rules the policy takes from shipped packs it is not itself."""
    return frozenset().union(*(_pack_rule_ids(name) for name in pack_names() if f"pack:{name}" not in model.sources))


@lru_cache(maxsize=None)
def _pack_rule_ids(name: str) -> frozenset[str]:
    return frozenset(rule.id for rule in load_model(f"pack:{name}", environ={}).rules)


def _judged_by_events(rule: Rule) -> bool:
    """Rules whose every event coverage can build (not actor ids, not signal-only categories)."""
    match = rule.match
    categories = set(match.categories) or {ACTIONS[a][0] for a in match.actions if a in ACTIONS} or {"http"}
    return not match.actor_ids and categories <= _SEEN_CATEGORIES


def _matched_rules(policy: Any, app: Any) -> set[int]:
    """Indexes of the rules some event of the app matches (whatever comes first)."""
    from dataclasses import replace

    from otel_audit.action import resolve
    from otel_audit.coverage import ACTORS, TABLE_OPERATIONS, route_event, table_event
    from otel_audit.policy.compiled import facts_of

    from otel_audit.outcome import outcome_for_status

    events = []
    for route in app.routes:
        for who in ACTORS:
            event = route_event(route, policy, who)
            events.append(event)
            for status in (401, 403, 404, 500):
                outcome, reason = outcome_for_status(status)
                events.append(replace(event, outcome=outcome, outcome_reason=reason,
                                      http=replace(event.http, status_code=status)))
    reads = (("SELECT", "read_resource", "read_resource"),)
    for table in app.tables:
        for operation, orm_action, sql_action in (*TABLE_OPERATIONS, *reads):
            for who in ACTORS:
                event = table_event(table, operation, orm_action, sql_action, policy, who)
                if operation == "SELECT":
                    event = replace(event, category="data_access")
                events.append(event)
    matched: set[int] = set()
    for event in events:
        resolve(event, policy.classifier)  # names the action exactly as at response time
        facts = facts_of(event)
        matched.update(i for i, rule in enumerate(policy.rules) if rule.why_not(facts) is None)
    return matched


def _decides(rule: Rule) -> tuple[Any, ...]:
    """What a rule decides; an earlier rule deciding the same (a pack rule restated) is no loss."""
    return (rule.level, rule.log_success, rule.log_failure, rule.required, rule.attributes, rule.tags,
            rule.granularity)


def _unknown_actions(rule: Rule, actions: set[str]) -> Iterable[Finding]:
    for glob in rule.match.actions:
        pattern = compile_globs([glob])
        if pattern is not None and not any(pattern.match(action) for action in actions):
            yield Finding("unknown-action", rule.id, f"action {glob!r} is not in the catalogue (after aliases) nor "
                          "named by any route of the policy: no event has it")


def _impossible_pairs(rule: Rule, pairs: set[tuple[str, str]], actions: set[str]) -> Iterable[Finding]:
    match = rule.match
    if not (match.categories and match.actions):
        return
    pattern = compile_globs(match.actions)
    known = [a for a in actions if pattern is not None and pattern.match(a)]
    if known and not any((category, action) in pairs for category in match.categories for action in known):
        yield Finding("impossible-pair", rule.id, f"category {'/'.join(match.categories)} never has action "
                      f"{'/'.join(match.actions)} (that action is "
                      f"{', '.join(sorted({c for c, a in pairs if a in known}))})")


def covers(first: Match, later: Match) -> bool:
    """Whether every event ``later`` matches is matched by ``first`` (conservative: False when unsure)."""
    return (_sets(first.categories, later.categories)
            and _globs(first.actions, later.actions)
            and _sets(first.methods, later.methods)
            and _globs(first.paths, later.paths)
            and _globs(first.resource_types, later.resource_types)
            and _sets(first.actor_ids, later.actor_ids)
            and _sets(first.actor_roles, later.actor_roles)
            and set(first.actor_not_roles) <= set(later.actor_not_roles)
            and first.actor_authenticated in (None, later.actor_authenticated)
            and _sets(first.outcomes, later.outcomes)
            and _ranges(first.status, later.status)
            and _sets(first.db_operations, later.db_operations)
            and _globs(first.db_tables, later.db_tables))


def _sets(first: Sequence[Any], later: Sequence[Any]) -> bool:
    return not first or (bool(later) and set(later) <= set(first))


def _globs(first: Sequence[str], later: Sequence[str]) -> bool:
    """``first`` matches all ``later`` can: each later glob is one of them, or a literal they match."""
    if not first:
        return True
    if not later:
        return False
    pattern = compile_globs(first)
    prefixes = [glob[:-1] for glob in first if glob.endswith("*") and not (_GLOB_CHARS & set(glob[:-1]))]
    return all(glob in first or any(glob.startswith(prefix) for prefix in prefixes)
               or (not (_GLOB_CHARS & set(glob)) and pattern is not None and pattern.match(glob))
               for glob in later)


def _ranges(first: Sequence[tuple[int, int]], later: Sequence[tuple[int, int]]) -> bool:
    if not first:
        return True
    return bool(later) and all(any(lo <= l_lo and l_hi <= hi for lo, hi in first) for l_lo, l_hi in later)
