"""``otel-audit verify`` and ``otel-audit status`` (registered by :mod:`otel_audit.cli`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _verify(args: argparse.Namespace) -> int:
    from otel_audit.delivery.chain import load_keys_for_verify
    from otel_audit.delivery.verify import EXIT_UNREADABLE, exit_status, format_report, report_as_dict, verify_files

    try:
        keys = load_keys_for_verify(key_file=args.key_file)
        report = verify_files(args.files, keys, allow_reorder=args.allow_reorder, digest_paths=args.digest or (),
                              expect_closed=args.expect_closed, max_open_age_s=args.max_open_age)
    except OSError as exc:
        print(f"otel-audit verify: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_UNREADABLE
    except ValueError as exc:
        print(f"otel-audit verify: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    if not report.records:
        # An emptied trail is not a clean one.
        print(f"otel-audit verify: no audit records in {', '.join(args.files)}: nothing to verify "
              "(an emptied file is not a clean trail)", file=sys.stderr)
        return EXIT_UNREADABLE
    print(json.dumps(report_as_dict(report), indent=2) if args.json else format_report(report))
    return exit_status(report)


def _duration(value: str) -> float:
    """``90``, ``90s``, ``5m``, ``2h``, ``1d`` -> seconds."""
    text = value.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    scale = units.get(text[-1:], None)
    number = text[:-1] if scale else text
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a duration such as 90, 90s, 5m or 2h") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a duration above 0")
    return seconds


def _status(args: argparse.Namespace) -> int:
    from otel_audit.config import AuditConfig, otlp_transport
    from otel_audit.delivery import destination_info
    from otel_audit.delivery.status import format_status, spool_status
    from otel_audit.errors import ConfigError

    try:
        config = AuditConfig.from_env()
    except ConfigError as exc:
        print(f"otel-audit status: {exc}", file=sys.stderr)
        return 2
    status = spool_status(Path(args.spool_dir) if args.spool_dir else config.spool_dir)
    # What a process started now under opentelemetry-instrument would resolve (the distro's default included).
    if config.wants_otlp():
        transport = otlp_transport(launcher=True)
        try:
            transport.check()
        except ConfigError as exc:
            print(f"otel-audit status: {exc}", file=sys.stderr)
            return 2
        status["destination"] = transport.as_dict()
        status["warning"] = transport.mismatch_warning()
    else:
        status["destination"] = destination_info(config)
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def add_delivery_commands(subparsers: argparse._SubParsersAction) -> None:
    verify = subparsers.add_parser(
        "verify",
        help="check exported audit records (sink JSON lines or OTLP JSON) against their hash chains",
        description="Reports modified, inserted, deleted and reordered records by file:line, and each chain as "
        "CLOSED, OPEN-SINCE <time of its last checkpoint> or TRUNCATED. Keys come from OTEL_AUDIT_CHAIN_KEY / "
        "OTEL_AUDIT_CHAIN_KEY_ID and --key-file. Exit 0 clean (open chains included unless --expect-closed or "
        "--max-open-age), 1 problems, 2 unreadable or empty input, 3 only gaps the chain declares (records lost).",
    )
    verify.add_argument("files", nargs="+", metavar="FILE", help="sink .jsonl or Collector file-exporter output")
    verify.add_argument("--key-file", help="file of KEY_ID:SECRET lines (rotated keys)")
    verify.add_argument("--allow-reorder", action="store_true",
                        help="accept records out of file order (pipelines that do not preserve order)")
    verify.add_argument("--digest", action="append", metavar="FILE",
                        help="checkpoint file (OTEL_AUDIT_CHECKPOINT_PATH): proves how far each chain reached")
    verify.add_argument("--expect-closed", action="store_true",
                        help="every chain must be closed by its stop record (a service that was shut down)")
    verify.add_argument("--max-open-age", type=_duration, metavar="AGE",
                        help="an open chain's last checkpoint must be younger than AGE (90s, 5m, 2h); with no open "
                        "chain, the newest record must be")
    verify.add_argument("--json", action="store_true", help="machine-readable report")
    verify.set_defaults(func=_verify)

    status = subparsers.add_parser("status", help="records waiting in the durable spool, per process")
    status.add_argument("--spool-dir", help="spool directory (default: OTEL_AUDIT_SPOOL_DIR or its default)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)
