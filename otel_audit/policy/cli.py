"""``otel-audit policy validate|lint|plan|explain|test|schema``.

Exit codes: 0 fine, 1 the policy is invalid, a golden case failed, lint found something or (plan
``--fail-on-drop``) a change stops auditing something; 2 bad command-line input (unreadable cases
or trail file, malformed event JSON, an app that cannot be loaded).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import Any, Sequence

import yaml

from otel_audit.policy.errors import PolicyError
from otel_audit.policy.lint import lint
from otel_audit.redaction import Redactor


def _load(path: str) -> Any:
    from otel_audit.policy import load_policy

    return load_policy(path, environ={})


def _load_or_report(path: str) -> Any:
    """The compiled policy, or None after printing every problem with it to stderr."""
    try:
        return _load(path)
    except PolicyError as exc:
        print(exc.report(), file=sys.stderr)
        return None


def _validate(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            policy = _load(path)
        except PolicyError as exc:
            print(f"{path}: INVALID ({len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''})")
            for problem in exc.problems:
                print(f"  {problem}")
            status = 1
            continue
        model = policy.model
        print(f"{path}: OK  id={policy.id} version={policy.version} {policy.hash}  "
              f"{len(model.rules)} rules, {len(model.routes)} routes (built-in routes included)")
        print(f"  redaction scan: {Redactor.from_config(policy.redaction, environ={}).scan_mode}")
        for note in model.notes:
            print(f"  note: {note}")
        for finding in lint(model):
            print(f"  warning: {finding}")
    return status


def _lint(args: argparse.Namespace) -> int:
    """Every finding of every file; exit 1 when there is one (a CI gate), 2 when --app cannot be read."""
    app = None
    if args.app:
        from otel_audit.coverage import CoverageError, inventory

        try:
            app = inventory(args.app, args.app_dir, (), args.database)
        except CoverageError as exc:
            print(f"otel-audit policy lint: {exc}", file=sys.stderr)
            return 2
    status = 0
    for path in args.files:
        policy = _load_or_report(path)
        if policy is None:
            status = 1
            continue
        findings = lint(policy.model, app, policy)
        against = (f" against {args.app} ({len({r.route for r in app.routes})} route templates, "
                   f"{len(app.tables)} tables)" if app is not None else "")
        print(f"{path}: {len(findings) or 'no'} finding{'s' if len(findings) != 1 else ''}{against}")
        for finding in findings:
            print(f"  {finding}")
        status = max(status, 1 if findings else 0)
    return status


def _plan(args: argparse.Namespace) -> int:
    """Both policies on the recorded trail; exit 1 with --fail-on-drop when something stops being audited."""
    from otel_audit.policy import plan

    old, new = _load_or_report(args.old), _load_or_report(args.new)
    if old is None or new is None:
        return 1
    try:
        records = plan.read_trail(args.trail)
    except plan.TrailError as exc:
        print(f"otel-audit policy plan: {exc}", file=sys.stderr)
        return 2
    result = plan.plan(old, new, records)
    if args.format == "json":
        print(plan.report_json(old, new, args.trail, result))
    else:
        print(plan.report_text(args.old, args.new, old, new, args.trail, result))
    if args.fail_on_drop and result.drops:
        if args.format != "json":
            print(f"FAIL: {result.drops} recorded events would no longer be audited (--fail-on-drop)")
        return 1
    return 0


def _explain(args: argparse.Namespace) -> int:
    from otel_audit.policy.explain import EventSpecError, dry_run, event_from_dict

    policy = _load_or_report(args.file)
    if policy is None:
        return 1
    try:
        spec = json.loads(args.event)
    except json.JSONDecodeError:
        try:
            spec = yaml.safe_load(args.event)
        except yaml.YAMLError as exc:
            print(f"--event: not JSON or YAML ({type(exc).__name__})", file=sys.stderr)
            return 2
    try:
        event = event_from_dict(spec, "--event")
    except (EventSpecError, TypeError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    result = dry_run(policy, event)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"event:      {result['original']}" + (f" -> {result['event_name']}" if result["event_name"] != "audit." + result["original"] else ""))
    print(f"outcome:    {result['outcome']}")
    print(f"rule:       {result['rule']}")
    print(f"level:      {result['level']}" + ("" if result["audited"] else "  (NOT AUDITED)"))
    print("why:")
    for line in result["why"]:
        print(f"  - {line}")
    if result["attributes"] is not None:
        print("record attributes (after redaction):")
        for key, value in sorted(result["attributes"].items()):
            marker = "  [redacted]" if key in result["redacted"] else ""
            print(f"  {key} = {json.dumps(value, default=str)}{marker}")
        if result["left_out_by_level"]:
            print(f"left out at level {result['level']}: {', '.join(result['left_out_by_level'])}")
    return 0


def _test(args: argparse.Namespace) -> int:
    from otel_audit.policy.explain import EventSpecError, compare, dry_run, event_from_dict

    policy = _load_or_report(args.file)
    if policy is None:
        return 1
    try:
        with open(args.cases, encoding="utf-8") as handle:
            cases_doc = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        print(f"{args.cases}: cannot read the cases ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    cases = cases_doc.get("cases") if isinstance(cases_doc, dict) else cases_doc
    if not isinstance(cases, list) or not cases:
        print(f"{args.cases}: expected a list of cases (or a mapping with 'cases:')", file=sys.stderr)
        return 2
    failed = 0
    for index, case in enumerate(cases):
        name = case.get("name", f"cases[{index}]") if isinstance(case, dict) else f"cases[{index}]"
        try:
            if not isinstance(case, dict) or not isinstance(case.get("expect"), dict):
                raise EventSpecError(f"cases[{index}]: expected a mapping with event: and expect:")
            result = dry_run(policy, event_from_dict(case.get("event"), f"cases[{index}].event"))
        except (EventSpecError, TypeError) as exc:
            print(f"ERROR {name}: {exc}")
            failed += 1
            continue
        problems = compare(case["expect"], result, f"cases[{index}].expect")
        if not problems:
            print(f"PASS  {name}")
            continue
        failed += 1
        print(f"FAIL  {name}")
        for problem in problems:
            print(f"      {problem}")
        print("\n".join("      " + line for line in _diff(case["expect"], result)))
    total = len(cases)
    print(f"{total - failed}/{total} cases passed")
    return 1 if failed else 0


def _diff(expected: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """A unified diff of the expectation against the same keys of the actual result."""
    actual: dict[str, Any] = {}
    for key, want in expected.items():
        if key == "attributes":
            got = result.get("attributes") or {}
            actual[key] = {name: got.get(name, "<absent>") for name in (want or {})}
        elif key == "absent":
            got = result.get("attributes") or {}
            actual[key] = [name for name in (want or []) if name not in got]
        else:
            actual[key] = result.get(key)
    dump = lambda data: yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=True).splitlines()  # noqa: E731
    return list(difflib.unified_diff(dump(expected), dump(actual), "expected", "actual", lineterm=""))


def _schema(args: argparse.Namespace) -> int:
    from otel_audit.policy import schema

    print(json.dumps(schema(), indent=2))
    return 0


def add_policy_commands(subparsers: Any) -> None:
    """Register ``policy validate|explain|test|schema`` on the ``otel-audit`` parser."""
    policy = subparsers.add_parser("policy", help="validate, explain and test audit policies")
    commands = policy.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    commands.required = True

    validate = commands.add_parser("validate", help="check policy files; non-zero exit with every problem listed")
    validate.add_argument("files", nargs="+", metavar="FILE", help="policy file (or pack:NAME)")
    validate.set_defaults(func=_validate)

    lint_cmd = commands.add_parser("lint", help="rules that can never apply: unknown actions, shadowed rules, "
                                   "globs matching no route of --app, impossible category/action pairs")
    lint_cmd.add_argument("files", nargs="+", metavar="FILE", help="policy file (or pack:NAME)")
    lint_cmd.add_argument("--app", help="module:app or Django settings module whose routes path globs must match")
    lint_cmd.add_argument("--app-dir", help="directory to import the app from (default: the current directory)")
    lint_cmd.add_argument("--database", metavar="URL", help="the app's database, for raw-SQL tables (as coverage)")
    lint_cmd.set_defaults(func=_lint)

    plan_cmd = commands.add_parser("plan", help="replay a recorded trail through two policies and show what would "
                                   "change (newly / no longer audited, levels, event names, redaction)")
    plan_cmd.add_argument("old", metavar="OLD", help="the policy in force (file or pack:NAME)")
    plan_cmd.add_argument("new", metavar="NEW", help="the proposed policy")
    plan_cmd.add_argument("--trail", required=True, metavar="FILE", help="records: the embedded sink's JSON lines "
                          "or OTLP JSON (a Collector file exporter's output)")
    plan_cmd.add_argument("--fail-on-drop", action="store_true", help="exit 1 if a recorded event would no longer "
                          "be audited")
    plan_cmd.add_argument("--format", choices=("text", "json"), default="text")
    plan_cmd.set_defaults(func=_plan)

    explain = commands.add_parser("explain", help="show which rule matches an event, at what level, and the record")
    explain.add_argument("file", metavar="FILE")
    explain.add_argument("--event", required=True, help='event as JSON, e.g. \'{"category": "http", "action": '
                         '"request", "http": {"method": "POST", "route": "/login", "status_code": 200}}\'')
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(func=_explain)

    test = commands.add_parser("test", help="run golden cases (event in -> expected decision and record)")
    test.add_argument("file", metavar="FILE")
    test.add_argument("cases", metavar="CASES", help="YAML file: cases: [{name, event, expect}]")
    test.set_defaults(func=_test)

    schema_cmd = commands.add_parser("schema", help="print the policy JSON Schema")
    schema_cmd.set_defaults(func=_schema)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="otel-audit")
    add_policy_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
