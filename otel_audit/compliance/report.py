"""``otel-audit compliance report``: requirement -> rules -> covered routes/tables -> tests.

With ``--app``, every route and table of the app (enumerated by :mod:`otel_audit.coverage`, the
same inventory the coverage gate uses) is turned into the events the adapters would record for it
- a member's and an administrator's successful call, an anonymous 401, a member's 403, reads and
row changes of each table - and the policy's own ``explain`` decides each. A route or table
counts for a requirement when one of the requirement's rules matches its event (whatever the rule
order); the report then says which rule actually decides: one of the requirement's (``covered``),
another rule that still records it (``recorded``, e.g. your own rule first), or nothing (``GAP``:
the event is not recorded at all).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

from otel_audit.compliance import Requirement, Traceability, TraceabilityError, load_traceability, traced_packs
from otel_audit.event import Actor, AuditEvent, DbInfo, Source, Target

#: Who calls each route, with which answer: (label, actor kind, HTTP status).
ROUTE_PROBES = (("member 200", "member", 200), ("admin 200", "admin", 200),
                ("anonymous 401", "anonymous", 401), ("member 403", "member", 403))
#: What happens to each table: (db operation, ORM action, SQL action, category) - one vocabulary,
#: so the ORM and the SQL layer name a change alike.
TABLE_PROBES = (("SELECT", "read_resource", "read_resource", "data_access"),
                ("INSERT", "create_resource", "create_resource", "data_modification"),
                ("UPDATE", "update_resource", "update_resource", "data_modification"),
                ("DELETE", "delete_resource", "delete_resource", "data_modification"))


class ReportError(Exception):
    """The report cannot be made (unknown pack, policy without the pack, app not loadable)."""


@dataclass
class Hit:
    """One route or table event a requirement's rules match, and what the policy does with it."""

    kind: str  # route | table
    subject: str  # "GET /notes/<int:note_id>" or "notes SELECT"
    probe: str  # "member 403"
    event_name: str
    decided_by: str
    level: str
    status: str  # covered | recorded | GAP


@dataclass
class RequirementReport:
    requirement: Requirement
    rules: list[str]  # rule ids of the policy that implement it (listed or tagged)
    hits: list[Hit]

    @property
    def gaps(self) -> list[Hit]:
        return [hit for hit in self.hits if hit.status == "GAP"]


# ---------------------------------------------------------------------------------------------
# Building


def implementing_rules(policy: Any, trace: Traceability, requirement: Requirement) -> list[Any]:
    """Compiled rules of ``policy`` that implement ``requirement``: listed in the traceability
    data, or tagged ``<tag_prefix><id>`` (how your own rules join a requirement)."""
    tag = f"{trace.tag_prefix}{requirement.id}"
    return [rule for rule in policy.rules if rule.rule.id in requirement.rules or tag in rule.rule.tags]


def _actor(kind: str, policy: Any) -> Actor:
    if kind == "anonymous":
        return Actor(type="anonymous")
    roles = tuple(policy.model.actors.admin_roles[:1]) if kind == "admin" else ("member",)
    return Actor(id=f"compliance-{kind}", name=f"compliance-{kind}", roles=roles, type="user", source="compliance")


def _route_events(route: Any, policy: Any) -> Iterable[tuple[str, Callable[[], AuditEvent]]]:
    from otel_audit.event import HttpInfo
    from otel_audit.outcome import outcome_for_status

    for label, kind, status in ROUTE_PROBES:
        def build(kind: str = kind, status: int = status) -> AuditEvent:
            outcome, reason = outcome_for_status(status)
            return AuditEvent(category=route.category, action="request", outcome=outcome, outcome_reason=reason,
                              actor=_actor(kind, policy), source=Source(address="192.0.2.10"),
                              http=HttpInfo(method=route.method, route=route.route, status_code=status),
                              origin="compliance")
        yield label, build


def _table_events(table: Any, policy: Any) -> Iterable[tuple[str, Callable[[], AuditEvent]]]:
    for operation, orm_action, sql_action, category in TABLE_PROBES:
        def build(operation: str = operation, orm_action: str = orm_action, sql_action: str = sql_action,
                  category: str = category) -> AuditEvent:
            action = orm_action if table.orm else sql_action
            target = Target(type=table.resource_type or table.table) if category == "data_modification" else None
            return AuditEvent(category=category, action=action, outcome="success", actor=_actor("member", policy),
                              target=target, db=DbInfo(collection=table.table, operation=operation),
                              origin="compliance")
        yield operation, build


def _hit(kind: str, subject: str, probe: str, build: Callable[[], AuditEvent], policy: Any,
         rules: list[Any]) -> Hit | None:
    from otel_audit.policy.compiled import facts_of

    event = build()
    explanation = policy.explain(event)  # classifies the request event in place, as the runtime does
    facts = facts_of(event)
    if not any(rule.matches(facts) for rule in rules):
        return None
    ids = {rule.rule.id for rule in rules}
    if explanation.decision is None:
        status, level = "GAP", "none"
    else:
        status = "covered" if explanation.rule_id in ids else "recorded"
        level = explanation.decision.level
    return Hit(kind, subject, probe, event.event_name, explanation.rule_id, level, status)


def build_report(policy: Any, trace: Traceability, found: Any = None) -> list[RequirementReport]:
    """One :class:`RequirementReport` per requirement; hits only when an app inventory is given."""
    reports = []
    for requirement in trace.requirements:
        rules = implementing_rules(policy, trace, requirement) if requirement.in_scope else []
        hits: list[Hit] = []
        if found is not None and rules:
            for route in found.routes:
                for probe, build in _route_events(route, policy):
                    hit = _hit("route", f"{route.method} {route.route}", probe, build, policy, rules)
                    if hit is not None:
                        hits.append(hit)
            for table in found.tables:
                for probe, build in _table_events(table, policy):
                    hit = _hit("table", table.table, probe, build, policy, rules)
                    if hit is not None:
                        hits.append(hit)
        reports.append(RequirementReport(requirement, [rule.rule.id for rule in rules], hits))
    return reports


def check_policy_has_pack(policy: Any, trace: Traceability) -> None:
    """A policy that does not include the pack cannot be reported against it."""
    listed = {rule for requirement in trace.requirements for rule in requirement.rules}
    present = {rule.rule.id for rule in policy.rules}
    if listed and not listed & present:
        raise ReportError(f"policy {policy.id} does not include pack:{trace.pack} (none of its rules "
                          f"{', '.join(sorted(listed)[:3])}, ... is in the policy); add `extends: pack:{trace.pack}`")


# ---------------------------------------------------------------------------------------------
# Output


def _wrap(label: str, text: str, width: int = 100) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), width=width, initial_indent=f"    {label:<10}",
                         subsequent_indent=" " * 14)


def report_text(trace: Traceability, policy: Any, reports: list[RequirementReport], app: str | None = None,
                framework: str | None = None, counts: tuple[int, int] | None = None) -> str:
    lines = [f"otel-audit compliance report: {trace.standard} {trace.standard_version} (pack:{trace.pack})",
             f"policy {policy.id} version {policy.version} {policy.hash}"]
    if app is not None and counts is not None:
        lines.append(f"app {app} ({framework}): {counts[0]} routes, {counts[1]} tables")
    else:
        lines.append("app: none given (--app module:app lists the routes and tables each requirement covers)")
    if trace.details:
        lines += ["", f"{trace.details_requirement}  {trace.details_title} - on every record:"]
        for detail in trace.details:
            fields = list(detail.all_of)
            if detail.any_of:
                fields.append(" or ".join(detail.any_of))
            others = "; ".join(f"{kind} actor: {' or '.join(refs)}" for kind, refs in detail.by_actor_type)
            lines.append(f"    {detail.name}: {', '.join(fields)}" + (f" ({others})" if others else ""))
        for test in trace.details_tests:
            lines.append(f"    test: {test}")
    for status, title in (("covered", "COVERED"), ("partial", "PARTIAL (what an application library can do)")):
        selected = [r for r in reports if r.requirement.status == status]
        if not selected:
            continue
        lines += ["", f"{title}:"]
        for report in selected:
            requirement = report.requirement
            lines.append(f"  {requirement.id}  {requirement.title}")
            lines.append(f"    rules:    {', '.join(report.rules) if report.rules else '-'}")
            for mechanism in requirement.mechanisms:
                lines += _wrap("built-in:", mechanism)
            if requirement.how:
                lines += _wrap("how:", requirement.how)
            if requirement.limits:
                lines += _wrap("not:", requirement.limits)
            if app is not None and report.rules:
                if not report.hits:
                    lines.append("    app:      no route or table of the app matches these rules")
                for hit in report.hits:
                    lines.append(f"    {hit.kind + ':':<10}{hit.subject} [{hit.probe}] -> {hit.event_name} "
                                 f"by {hit.decided_by} ({hit.level}) {hit.status}")
            for test in requirement.tests:
                lines.append(f"    test:     {test}")
    out_of_scope = [r.requirement for r in reports if r.requirement.status == "out_of_scope"]
    if out_of_scope:
        lines += ["", "OUT OF SCOPE for an application library:"]
        for requirement in out_of_scope:
            lines.append(f"  {requirement.id}  {requirement.title}")
            lines += _wrap("why:", requirement.reason or "")
    gaps = [(report.requirement.id, hit) for report in reports for hit in report.gaps]
    in_scope = [r for r in reports if r.requirement.in_scope]
    lines.append("")
    lines.append(f"{len(in_scope)} requirements addressed ({sum(r.requirement.status == 'covered' for r in in_scope)} "
                 f"covered, {sum(r.requirement.status == 'partial' for r in in_scope)} partial), "
                 f"{len(out_of_scope)} out of scope")
    if gaps:
        lines.append(f"GAPS: {len(gaps)} events the requirements need are not recorded:")
        for requirement_id, hit in gaps:
            lines.append(f"  {requirement_id}: {hit.subject} [{hit.probe}] -> {hit.event_name}: rule {hit.decided_by} "
                         "switches it off")
    elif app is not None:
        lines.append("OK: every route and table event these requirements need is recorded")
    return "\n".join(lines)


def report_json(trace: Traceability, policy: Any, reports: list[RequirementReport], app: str | None = None,
                framework: str | None = None, counts: tuple[int, int] | None = None) -> str:
    def requirement_dict(report: RequirementReport) -> dict[str, Any]:
        data = asdict(report.requirement)
        data["rules_in_policy"] = report.rules
        data["hits"] = [asdict(hit) for hit in report.hits]
        return data

    return json.dumps({
        "pack": trace.pack,
        "standard": trace.standard,
        "standard_version": trace.standard_version,
        "policy": {"id": policy.id, "version": policy.version, "hash": policy.hash},
        "app": None if app is None else {"spec": app, "framework": framework, "routes": counts[0] if counts else 0,
                                         "tables": counts[1] if counts else 0},
        "record_details": {"requirement": trace.details_requirement, "tests": list(trace.details_tests),
                           "details": [asdict(d) for d in trace.details]},
        "requirements": [requirement_dict(r) for r in reports if r.requirement.in_scope],
        "out_of_scope": [{"id": r.requirement.id, "title": r.requirement.title, "reason": r.requirement.reason}
                         for r in reports if not r.requirement.in_scope],
        "gaps": [dict(requirement=r.requirement.id, **asdict(hit)) for r in reports for hit in r.gaps],
    }, indent=2)


# ---------------------------------------------------------------------------------------------
# Command line


def run_report(args: argparse.Namespace) -> int:
    from otel_audit.policy import PolicyError, load_policy

    try:
        trace = load_traceability(args.pack)
    except TraceabilityError as exc:
        print(f"otel-audit compliance: {exc}", file=sys.stderr)
        return 2
    source = args.policy or f"pack:{trace.pack}"
    try:
        policy = load_policy(source, environ={})
        check_policy_has_pack(policy, trace)
    except PolicyError as exc:
        print(f"otel-audit compliance: the policy is invalid:\n{exc.report()}", file=sys.stderr)
        return 2
    except ReportError as exc:
        print(f"otel-audit compliance: {exc}", file=sys.stderr)
        return 2
    found = None
    if args.app:
        from otel_audit.coverage import AppTable, CoverageError, inventory

        try:
            found = inventory(args.app, args.app_dir, args.models or ())
        except CoverageError as exc:
            print(f"otel-audit compliance: {exc}", file=sys.stderr)
            return 2
        known = {table.table for table in found.tables}
        for name in args.table or ():
            if name not in known:  # raw-SQL apps have no models to find tables in
                found.tables.append(AppTable(name, None, False, name))
    reports = build_report(policy, trace, found)
    render = report_json if args.format == "json" else report_text
    counts = (len({(r.method, r.route) for r in found.routes}), len(found.tables)) if found is not None else None
    print(render(trace, policy, reports, args.app, found.framework if found else None, counts))
    return 1 if any(report.gaps for report in reports) else 0


def run_packs(args: argparse.Namespace) -> int:
    for name in traced_packs():
        trace = load_traceability(name)
        counts = {status: sum(r.status == status for r in trace.requirements)
                  for status in ("covered", "partial", "out_of_scope")}
        print(f"pack:{name:<10} {trace.standard} {trace.standard_version}: {counts['covered']} covered, "
              f"{counts['partial']} partial, {counts['out_of_scope']} out of scope")
    return 0


def add_compliance_command(subparsers: Any) -> None:
    parser = subparsers.add_parser("compliance", help="compliance packs: requirement -> rules -> routes -> tests")
    commands = parser.add_subparsers(dest="compliance_command", metavar="COMMAND")
    report = commands.add_parser(
        "report", help="what each requirement of a pack is implemented by, what it covers in your app, the tests "
        "proving it and what is out of scope; exit 1 if a needed event is not recorded")
    report.add_argument("--pack", required=True, help=f"compliance pack ({', '.join(traced_packs())})")
    report.add_argument("--policy", help="your policy that extends the pack (file, inline YAML or pack:NAME; "
                        "default: the pack itself)")
    report.add_argument("--app", help="module:app (Flask, FastAPI/Starlette) or a Django settings module")
    report.add_argument("--app-dir", help="directory to import the app from (default: the current directory)")
    report.add_argument("--table", action="append", metavar="NAME",
                        help="also check this table (raw-SQL apps have no models); repeatable")
    report.add_argument("--models", action="append", metavar="MODULE",
                        help="import this module too, to find SQLAlchemy models; repeatable")
    report.add_argument("--format", choices=("text", "json"), default="text")
    report.set_defaults(func=run_report)
    packs = commands.add_parser("packs", help="list the compliance packs")
    packs.set_defaults(func=run_packs)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

