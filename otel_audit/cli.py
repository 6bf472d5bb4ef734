"""``otel-audit`` command line: ``demo``, ``records``, and the subcommands each area registers
(``policy …`` from :mod:`otel_audit.policy.cli`, ``verify``/``status`` from
:mod:`otel_audit.delivery.cli`, ``detections …`` from :mod:`otel_audit.detections.cli`)."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# (module, function) pairs that add subcommands; a missing module just means that area's
# commands are not available in this build.
_COMMAND_PROVIDERS = (
    ("otel_audit.policy.cli", "add_policy_commands"),
    ("otel_audit.delivery.cli", "add_delivery_commands"),
    ("otel_audit.coverage", "add_coverage_command"),
    ("otel_audit.compliance.report", "add_compliance_command"),
    ("otel_audit.detections.cli", "add_detections_commands"),
)


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run an example app under opentelemetry-instrument, drive a scripted session, print the audit trail",
    )
    parser.add_argument("--app", choices=("flask", "django", "fastapi"), default="flask",
                        help="which example (default: flask)")
    parser.add_argument("--sink", help="sink file to write (default: a new temporary file)")
    parser.add_argument("--json", action="store_true", help="print the records as JSON lines instead of a table")
    parser.add_argument("--keep-going", action="store_true", help=argparse.SUPPRESS)

    def run(args: argparse.Namespace) -> int:
        from otel_audit.demo import run_demo

        return run_demo(sink=args.sink, as_json=args.json, app=args.app)

    parser.set_defaults(func=run)


def _add_records(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("records", help="print the records in an embedded-sink file as a table")
    parser.add_argument("path", help="JSON-lines sink file")
    parser.add_argument("--json", action="store_true", help="print JSON lines")

    def run(args: argparse.Namespace) -> int:
        from otel_audit.demo import print_records
        from otel_audit.delivery.sink import read_sink

        try:
            records = list(read_sink(args.path))
        except OSError as exc:
            print(f"otel-audit records: cannot read {args.path}: {exc.strerror}", file=sys.stderr)
            return 2
        print_records(records, as_json=args.json)
        return 0

    parser.set_defaults(func=run)


def _add_hash(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hash", help="print the pseudonym a value gets under OTEL_AUDIT_HMAC_KEY (find a user's records without "
                     "storing the name in clear)")
    parser.add_argument("values", nargs="+", metavar="VALUE")

    def run(args: argparse.Namespace) -> int:
        from otel_audit.config import HMAC_KEY_ENV as KEY_ENV
        from otel_audit.config import raw_setting
        from otel_audit.redaction.pseudonyms import pseudonymise

        key = raw_setting(KEY_ENV)
        if len(key) < 16:
            print(f"otel-audit hash: {KEY_ENV} is {'unset' if not key else 'shorter than 16 characters'}: the "
                  "records were pseudonymised with their process's key, so set the same key to search them",
                  file=sys.stderr)
            return 2
        for value in args.values:
            print(f"{pseudonymise(value)}  {value}" if len(args.values) > 1 else pseudonymise(value))
        return 0

    parser.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otel-audit", description="Audit logging as code for OpenTelemetry.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo(subparsers)
    _add_records(subparsers)
    _add_hash(subparsers)
    for module_name, function_name in _COMMAND_PROVIDERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        getattr(module, function_name)(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
