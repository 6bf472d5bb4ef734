"""The compiled policy: what the Decide step asks on the hot path.

Compiled once per load: each rule's globs become one regex, rules are indexed by category, and the
event facts that no rule looks at are left out of the decision cache key (actor ids, raw paths and
statuses only count when some rule matches on them), so a bounded LRU cache answers repeated
shapes of request without scanning rules. ``benchmarks/policy_decisions.py`` measures it against
a naive fnmatch-per-rule loop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator, NamedTuple

from otel_audit.actors import DEFAULT_SOURCES, ActorResolver
from otel_audit.event import CATEGORIES, AuditEvent
from otel_audit.local_time import LocalTime
from otel_audit.pipeline import Decision
from otel_audit.action import is_request_event, resolve
from otel_audit.policy.classify import Classification, Classifier, path_spellings
from otel_audit.policy.globs import compile_globs, normalise_route
from otel_audit.policy.model import PolicyModel, Rule

#: For unclassified ``http.request``/``admin.request`` events, rules on ``action`` also see the CRUD verb of the method.
IMPLIED_HTTP_ACTIONS = {
    "POST": "create_resource",
    "GET": "read_resource",
    "HEAD": "read_resource",
    "PUT": "update_resource",
    "PATCH": "update_resource",
    "DELETE": "delete_resource",
}
_FAILED = ("failure", "denied")


class Facts(NamedTuple):
    """What rules can match on, taken from the event once."""

    category: str
    action: str
    implied_action: str | None
    method: str | None
    route: str | None
    path: str | None
    resource_type: str | None
    actor_id: str | None
    roles: frozenset[str] | None
    authenticated: bool | None
    outcome: str | None
    status: int | None
    db_operation: str | None
    db_table: str | None


_ALL_FACTS = frozenset(Facts._fields)
#: :meth:`CompiledPolicy.kind_decision`: the kind alone does not decide (build the fact, ask :meth:`decide`).
UNDECIDED = object()
_NOT_ASKED = object()


def facts_of(event: AuditEvent, used: frozenset[str] = _ALL_FACTS) -> Facts:
    """The event's facts; those not in ``used`` (no rule looks at them) are left ``None``, so
    the decision cache sees one key per shape of event that rules can tell apart."""
    http, db, actor = event.http, event.db, event.actor
    method = (http.method or "").upper() or None if http is not None else None
    implied = IMPLIED_HTTP_ACTIONS.get(method or "") if is_request_event(event) else None
    return Facts(
        event.category,
        event.action,
        implied,
        method if "method" in used else None,
        normalise_route(http.route) if http is not None and "route" in used else None,
        http.path if http is not None and "path" in used else None,
        event.target.type if event.target is not None and "resource_type" in used else None,
        actor.id if "actor_id" in used else None,
        frozenset(actor.roles) if "roles" in used else None,
        bool(actor.id) and actor.type != "anonymous" if "authenticated" in used else None,
        event.outcome if "outcome" in used else None,
        http.status_code if http is not None and "status" in used else None,
        (db.operation or "").upper() or None if db is not None and "db_operation" in used else None,
        db.collection if db is not None and "db_table" in used else None,
    )


class CompiledRule:
    """One rule with its globs compiled; :meth:`why_not` explains a miss (for ``policy explain``)."""

    def __init__(self, rule: Rule) -> None:
        m = rule.match
        self.rule = rule
        self.categories = frozenset(m.categories)
        self.actions = compile_globs(m.actions)
        self.methods = frozenset(m.methods)
        self.paths = compile_globs(m.paths)
        self.resource_types = compile_globs(m.resource_types)
        self.actor_ids = frozenset(m.actor_ids)
        self.roles = frozenset(m.actor_roles)
        self.not_roles = frozenset(m.actor_not_roles)
        self.authenticated = m.actor_authenticated
        self.outcomes = frozenset(m.outcomes)
        self.status = m.status
        self.db_operations = frozenset(m.db_operations)
        self.db_tables = compile_globs(m.db_tables)

    def why_not(self, f: Facts) -> str | None:
        """None when the rule matches, else the first condition that fails."""
        if self.categories and f.category not in self.categories:
            return f"category {f.category} not in {sorted(self.categories)}"
        if self.actions is not None and not (
            self.actions.match(f.action) or (f.implied_action and self.actions.match(f.implied_action))
        ):
            return f"action {f.action}" + (f" ({f.implied_action})" if f.implied_action else "") + " does not match"
        if self.methods and f.method not in self.methods:
            return f"method {f.method} not in {sorted(self.methods)}"
        if self.paths is not None and not any(self.paths.match(p) for p in path_spellings(f.route) + path_spellings(f.path)):
            return f"route {f.route} / path {f.path} does not match"
        if self.resource_types is not None and not (f.resource_type and self.resource_types.match(f.resource_type)):
            return f"resource type {f.resource_type} does not match"
        if self.actor_ids and f.actor_id not in self.actor_ids:
            return f"actor {f.actor_id} not listed"
        if self.roles and (f.roles is None or self.roles.isdisjoint(f.roles)):
            return f"actor roles {sorted(f.roles or ())} have none of {sorted(self.roles)}"
        if self.not_roles and f.roles is not None and not self.not_roles.isdisjoint(f.roles):
            return f"actor has an excluded role ({sorted(self.not_roles & f.roles)})"
        if self.authenticated is not None and f.authenticated != self.authenticated:
            return "actor is " + ("anonymous" if self.authenticated else "authenticated")
        if self.outcomes and f.outcome not in self.outcomes:
            return f"outcome {f.outcome} not in {sorted(self.outcomes)}"
        if self.status and not (f.status is not None and any(lo <= f.status <= hi for lo, hi in self.status)):
            return f"status {f.status} not in the listed codes"
        if self.db_operations and f.db_operation not in self.db_operations:
            return f"db operation {f.db_operation} not in {sorted(self.db_operations)}"
        if self.db_tables is not None and not (f.db_table and self.db_tables.match(f.db_table)):
            return f"db table {f.db_table} does not match"
        return None

    def matches(self, f: Facts) -> bool:
        return self.why_not(f) is None

    def unconditional_beyond_kind(self) -> bool:
        """Whether the rule asks nothing but category, action and DB operation (what
        :meth:`CompiledPolicy.never_records` knows of a statement before building its event)."""
        return not (self.methods or self.paths is not None or self.resource_types is not None or self.actor_ids
                    or self.roles or self.not_roles or self.authenticated is not None or self.outcomes
                    or self.status or self.db_tables is not None)


# Which Facts fields a rule looks at, so unused ones can be blanked in the cache key.
_USES = {
    "method": lambda r: bool(r.methods),
    "route": lambda r: r.paths is not None,
    "path": lambda r: r.paths is not None,
    "resource_type": lambda r: r.resource_types is not None,
    "actor_id": lambda r: bool(r.actor_ids),
    "roles": lambda r: bool(r.roles or r.not_roles),
    "authenticated": lambda r: r.authenticated is not None,
    "outcome": lambda r: bool(r.outcomes),
    "status": lambda r: bool(r.status),
    "db_operation": lambda r: bool(r.db_operations),
    "db_table": lambda r: r.db_tables is not None,
}


@dataclass
class Explanation:
    """Everything ``otel-audit policy explain`` prints about one event."""

    decision: Decision | None
    rule_id: str
    why: list[str] = field(default_factory=list)
    classification: Classification | None = None


class CompiledPolicy:
    """The loaded policy. Exposes what the runtime and adapters use: ``id``, ``version``, ``hash``,
    ``redaction``, ``failure_mode``, ``actor_resolver``, ``required_fields``, ``local_time`` (the
    Enrich step's stamper), ``decide(event)``."""

    def __init__(self, model: PolicyModel, cache_size: int = 8192) -> None:
        self.model = model
        self.id = model.id
        self.version = model.version
        self.hash = model.hash
        self.redaction: dict[str, Any] = dict(model.redaction)
        self.failure_mode = model.failure_mode
        self.actor_resolver = ActorResolver(model.actors.sources or DEFAULT_SOURCES)
        self.required_fields = dict(model.required_fields)
        self.local_time = LocalTime(model.local_time.zone, model.local_time.categories)
        #: Whether any fact can be recorded on its own (``granularity: statement`` somewhere).
        self.statement_granularity = model.defaults.granularity == "statement" or any(
            rule.granularity == "statement" for rule in model.rules)
        self.incomplete: Counter[str] = Counter()  # records marked audit.incomplete, by category
        self.classifier = Classifier(model.routes, model.actors)
        self.rules = [CompiledRule(rule) for rule in model.rules]
        self._by_category = {
            category: tuple(i for i, r in enumerate(self.rules) if not r.categories or category in r.categories)
            for category in CATEGORIES
        }
        self._uncategorised = tuple(i for i, r in enumerate(self.rules) if not r.categories)
        used = {name for name, uses in _USES.items() if any(uses(rule) for rule in self.rules)}
        self._used = frozenset(used) | frozenset(Facts._fields[:3])
        self._first_match = lru_cache(maxsize=cache_size)(self._first_match_uncached)
        defaults = model.defaults
        self._default_extra = _extra(defaults.attributes, defaults.tags)
        self._rule_extra = [_extra(r.rule.attributes, r.rule.tags) for r in self.rules]
        # (rule index, outcome, audit_system?) -> (decision, note): a handful of distinct answers.
        self._decisions: dict[tuple[int | None, str, bool], tuple[Decision | None, str]] = {}
        self._quiet: dict[tuple[str, str, str | None], bool] = {}
        self._by_kind: dict[tuple[str, str, str | None, str], Any] = {}

    # -- matching -------------------------------------------------------------------------------

    def _first_match_uncached(self, facts: Facts) -> int | None:
        for index in self._by_category.get(facts.category, self._uncategorised):
            if self.rules[index].matches(facts):
                return index
        return None

    def _outcome_allowed(self, outcome: str, log_success: bool | None, log_failure: bool | None) -> bool:
        defaults = self.model.defaults
        if outcome in _FAILED:
            return defaults.log_failure if log_failure is None else log_failure
        return defaults.log_success if log_success is None else log_success

    def _decision(self, event: AuditEvent, index: int | None) -> tuple[Decision | None, str]:
        return self._decision_for(index, event.outcome, event.category == "audit_system")

    def _decision_for(self, index: int | None, outcome: str, audit_system: bool) -> tuple[Decision | None, str]:
        key = (index, outcome, audit_system)
        found = self._decisions.get(key)
        if found is None:
            found = self._decision_uncached(index, outcome, audit_system)
            if len(self._decisions) < 4096:
                self._decisions[key] = found
        return found

    def _decision_uncached(self, index: int | None, outcome: str, audit_system: bool) -> tuple[Decision | None, str]:
        defaults = self.model.defaults
        if index is None:
            rule_id, level = "default", defaults.level
            allowed = self._outcome_allowed(outcome, None, None)
            decision = Decision(level, rule_id, defaults.required, self._default_extra, defaults.granularity)
        else:
            rule = self.rules[index].rule
            # A rule without a level of its own selects events for auditing: the default level,
            # or metadata when the default is "none" (the seed shorthand under defaults.level none).
            rule_id = rule.id
            level = rule.level or (defaults.level if defaults.level != "none" else "metadata")
            allowed = self._outcome_allowed(outcome, rule.log_success, rule.log_failure)
            required = defaults.required if rule.required is None else rule.required
            granularity = rule.granularity or defaults.granularity
            decision = Decision(level, rule_id, required, self._rule_extra[index], granularity)
        note = ""
        if not allowed:
            note = f"outcome {outcome} is not logged by {rule_id} (log_success/log_failure)"
            decision = None
        elif level == "none":
            note = f"{rule_id} sets level none"
            decision = None
        if decision is None and audit_system:
            # Auditing the audit system cannot be switched off (PCI DSS 10.2.1.6).
            decision = Decision("metadata", "audit_system", True)
            note += "; audit_system events are always recorded"
        return decision, note

    def decide(self, event: AuditEvent) -> Decision | None:
        """The first matching rule (or the default) decides. Stateless: the action was named
        before (:func:`otel_audit.action.resolve`, which uses :attr:`classifier`)."""
        index = self._first_match(facts_of(event, self._used))
        return self._decision(event, index)[0]

    def explain(self, event: AuditEvent) -> Explanation:
        """Like :meth:`decide`, with the reasons: how the action was named (an unnamed request is
        named first, exactly as at response time) and why each earlier rule missed."""
        classification = resolve(event, self.classifier)
        facts = facts_of(event)
        why: list[str] = []
        if classification is not None:
            why.append(f"route {classification.route.id} classified the request as "
                       f"{classification.category}.{classification.action} ({classification.why})")
        index = None
        for i in self._by_category.get(facts.category, self._uncategorised):
            reason = self.rules[i].why_not(facts)
            if reason is None:
                index = i
                why.append(f"rule {self.rules[i].rule.id} matches (first match decides)")
                break
            why.append(f"rule {self.rules[i].rule.id} skipped: {reason}")
        if index is None:
            why.append("no rule matches: the policy defaults apply")
        decision, note = self._decision(event, index)
        if note:
            why.append(note)
        return Explanation(decision, self.rules[index].rule.id if index is not None else "default", why, classification)

    def cache_info(self) -> Any:
        return self._first_match.cache_info()

    def never_records(self, category: str, action: str, db_operation: str | None) -> bool:
        """Whether every statement fact of this kind is decided ``none`` whatever else it says (its
        table, actor, outcome...): true for reads under the default policy (``builtin.db-reads-off``).
        A DB adapter asks this first, so a statement nothing would record costs one look-up, not an
        event built and decided. Known from the rules alone: answered once per kind."""
        key = (category, action, db_operation)
        quiet = self._quiet.get(key)
        if quiet is None:
            quiet = self._never_records(category, action, (db_operation or "").upper() or None)
            if len(self._quiet) < 1024:
                self._quiet[key] = quiet
        return quiet

    def kind_decision(self, category: str, action: str, db_operation: str | None, outcome: str) -> Any:
        """The decision on every statement fact of this kind and outcome when the rules make it
        from those alone (no rule that could match first asks for the table, actor, route...), else
        :data:`UNDECIDED`. A DB adapter then folds the statement into its action without building its
        event. The same answer :meth:`decide` gives such a fact; answered once per kind."""
        key = (category, action, db_operation, outcome)
        found = self._by_kind.get(key, _NOT_ASKED)
        if found is _NOT_ASKED:
            found = self._kind_decision(category, action, (db_operation or "").upper() or None, outcome)
            if len(self._by_kind) < 1024:
                self._by_kind[key] = found
        return found

    def _rules_for_kind(self, category: str, action: str, db_operation: str | None) -> Iterator[tuple[int, CompiledRule]]:
        """In order, the rules that may match a statement fact of this kind (their other
        conditions unknown here): what :meth:`kind_decision` and :meth:`never_records` reason over."""
        for index in self._by_category.get(category, self._uncategorised):
            rule = self.rules[index]
            if rule.actions is not None and not rule.actions.match(action):
                continue
            if rule.db_operations and db_operation not in rule.db_operations:
                continue
            yield index, rule

    def _kind_decision(self, category: str, action: str, db_operation: str | None, outcome: str) -> Any:
        if category == "audit_system":
            return UNDECIDED
        for index, rule in self._rules_for_kind(category, action, db_operation):
            if not rule.unconditional_beyond_kind():
                return UNDECIDED  # whether it matches depends on more than the kind
            return self._decision_for(index, outcome, False)[0]
        return self._decision_for(None, outcome, False)[0]

    def _never_records(self, category: str, action: str, db_operation: str | None) -> bool:
        if category == "audit_system":
            return False  # always recorded
        for _index, rule in self._rules_for_kind(category, action, db_operation):
            if rule.rule.level != "none":
                return False  # it may match (its other conditions are unknown here) and record
            if rule.unconditional_beyond_kind():
                return True  # it matches every such fact first (earlier rules: none or no match)
        return self.model.defaults.level == "none"


def _extra(attributes: tuple[tuple[str, Any], ...], tags: tuple[str, ...]) -> dict[str, Any]:
    extra = {key: list(value) if isinstance(value, tuple) else value for key, value in attributes}
    if tags:
        extra["audit.tags"] = list(tags)
    return extra
