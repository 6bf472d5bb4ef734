"""``otel-audit detections list|convert|test`` (docs/detections.md). The subcommands are always
listed; pySigma is imported only when one runs, so a core install says which extra it needs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

MISSING_EXTRA = ("otel-audit detections: pySigma is not installed ({cause}); install the extra: "
                 "pip install 'otel-audit[detections]'")


def _add_rule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", action="append", default=[], metavar="PATH",
                        help="a rule file or directory of your own (repeatable); a rule with a shipped rule's name "
                             "replaces it")
    parser.add_argument("--no-pack", action="store_true", help="leave the shipped rule pack out")


def _loader(args: argparse.Namespace) -> Callable[[], Any]:
    from .pack import load_rules

    return lambda: load_rules(args.rules, include_pack=not args.no_pack)


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Bad input is a message naming the file and the problem (exit 2), never a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            import sigma  # noqa: F401
        except ImportError as exc:
            print(MISSING_EXTRA.format(cause=exc.name or exc), file=sys.stderr)
            return 2
        from .pack import RuleError

        try:
            return command(args)
        except RuleError as exc:
            print(f"otel-audit detections: {exc}", file=sys.stderr)
            return 2

    return run


def _list(args: argparse.Namespace) -> int:
    from .pack import rule_name

    loaded = _loader(args)()
    rows = []
    for rule in loaded.alerting():
        span = getattr(rule, "timespan", None)
        rows.append({"name": rule_name(rule), "id": str(rule.id), "title": rule.title,
                     "level": rule.level.name.lower() if rule.level else "",
                     "type": getattr(getattr(rule, "type", None), "name", "single").lower(),
                     "timespan": str(span.spec) if span is not None else None,
                     "tags": [f"{t.namespace}.{t.name}" for t in rule.tags],
                     "falsepositives": list(getattr(rule, "falsepositives", None) or []),
                     "file": str(loaded.sources[rule_name(rule)])})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        window = f" {row['timespan']}" if row["timespan"] else ""
        print(f"{row['name']:<{width}}  {row['level']:<8} {row['type'] + window:<18} {row['title']}")
    for name in loaded.replaced:
        print(f"note: {name} is your copy ({loaded.sources[name]}), not the shipped one", file=sys.stderr)
    return 0


def _convert(args: argparse.Namespace) -> int:
    from .convert import convert

    sys.stdout.write(convert(_loader(args), args.backend, form=args.format))
    return 0


def _matches(alert: Any, wanted: str) -> bool:
    return wanted in (alert.rule, alert.rule_id, alert.rule.removeprefix("otel_audit_"))


def _print_alerts(alerts: list[Any]) -> None:
    if not alerts:
        print("no alerts")
        return
    for alert in alerts:
        group = ", ".join(f"{k}={v}" for k, v in alert.group.items()) or "-"
        print(f"{alert.level.upper():<8} {alert.rule}  {alert.title}")
        print(f"         group: {group}  window: {alert.window_start} .. {alert.window_end}")
        print(f"         actors: {', '.join(alert.actors) or '-'}  events ({len(alert.event_ids)}): "
              f"{' '.join(alert.event_ids[:6])}{' …' if len(alert.event_ids) > 6 else ''}")
    print(f"\n{len(alerts)} alert(s)")


def _test(args: argparse.Namespace) -> int:
    from .evaluate import evaluate
    from .pack import rule_name
    from .trail import read_trail

    loader = _loader(args)
    known = {n for r in loader().alerting() for n in (rule_name(r), str(r.id), rule_name(r).removeprefix("otel_audit_"))}
    unknown = [name for name in args.expect if name not in known]
    if unknown:
        print(f"otel-audit detections test: --expect names no rule: {', '.join(unknown)} (see: otel-audit detections list)",
              file=sys.stderr)
        return 2
    try:
        records = read_trail(args.trail)
    except OSError as exc:
        print(f"otel-audit detections test: cannot read {args.trail}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"otel-audit detections test: {exc}", file=sys.stderr)
        return 2
    alerts = evaluate(loader, records)
    if args.json:
        print(json.dumps({"trail": args.trail, "records": len(records), "alerts": [a.as_dict() for a in alerts]}, indent=2))
    else:
        _print_alerts(alerts)
    failed = False
    for wanted in args.expect:
        if not any(_matches(a, wanted) for a in alerts):
            print(f"FAIL: rule {wanted} did not fire on {args.trail} ({len(records)} records)", file=sys.stderr)
            failed = True
    if args.expect_none and alerts:
        print(f"FAIL: expected no alert, {len(alerts)} fired: {', '.join(sorted({a.rule for a in alerts}))}",
              file=sys.stderr)
        failed = True
    return 1 if failed else 0


def add_detections_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("detections", help="Sigma detection rules over the audit trail: list, convert for "
                                                      "Splunk / Loki / Datadog, test on a recorded trail")
    commands = parser.add_subparsers(dest="detections_command", metavar="COMMAND")

    listing = commands.add_parser("list", help="the alerting rules: name, level, correlation and window, title")
    _add_rule_options(listing)
    listing.add_argument("--json", action="store_true", help="print JSON (with tags, false positives and file)")
    listing.set_defaults(func=_guarded(_list))

    converting = commands.add_parser("convert", help="print deployable rules for a backend")
    converting.add_argument("--backend", required=True, choices=("splunk", "loki", "datadog"))
    converting.add_argument("--format", choices=("terraform", "json"), default="terraform",
                            help="Datadog only: Terraform resources (default) or the API's JSON")
    _add_rule_options(converting)
    converting.set_defaults(func=_guarded(_convert))

    testing = commands.add_parser("test", help="run every rule over a recorded trail (sink JSON lines or OTLP JSON) "
                                              "in SQLite and print the alerts")
    testing.add_argument("--trail", required=True, metavar="FILE")
    testing.add_argument("--expect", action="append", default=[], metavar="RULE",
                         help="exit 1 unless this rule (name, id, or name without otel_audit_) fired; repeatable")
    testing.add_argument("--expect-none", action="store_true", help="exit 1 if any rule fired")
    testing.add_argument("--json", action="store_true", help="print the alerts as JSON")
    _add_rule_options(testing)
    testing.set_defaults(func=_guarded(_test))

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
