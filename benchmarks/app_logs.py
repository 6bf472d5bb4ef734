"""Cost per application log record of OTEL_AUDIT_REDACT_ALL_LOGS (off / secrets / all).

    python -m benchmarks.app_logs [--records 20000] [--rounds 5] [--json]

Each mode logs the same mix through stdlib ``logging`` -> contrib's ``LoggingHandler`` -> an SDK
``LoggerProvider`` whose one processor hands records to an exporter that drops them (so the
figure is the logging path plus redaction, not a network). The mix: werkzeug-style access lines
(a third with a signed URL), plain messages, messages with ``extra`` fields (a tenth with a
password). The difference to ``off`` is the redaction's cost per record; best of ``--rounds``
interleaved passes, the clean-text cache emptied before each pass (every line here is unique in
real traffic, as the timestamps make them).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor

from otel_audit.redaction import Redactor
from otel_audit.redaction.logs import install_on_provider, secrets_redactor

MODES = ("off", "secrets", "all")


class _Drop(LogRecordExporter):
    def export(self, batch: Any) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _lines(count: int) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    out = []
    for index in range(count):
        kind = index % 4
        if kind == 0:
            query = (f"X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F2026{index:04d}&X-Amz-Signature={index:064x}"
                     if index % 3 == 0 else f"page={index}&sort=name")  # fmt: skip
            out.append(('%s - - [%s] "%s" %s -', ("127.0.0.1", f"01/Dec/2026 10:{index % 60:02d}:00",
                                                   f"GET /items/{index}?{query} HTTP/1.1", "200"), {}))  # fmt: skip
        elif kind == 1:
            out.append(("order %s shipped to warehouse %s", (f"ORD-{index}", index % 17), {}))
        elif kind == 2:
            extra = {"order_id": f"ORD-{index}", "user_id": index}
            if index % 10 == 2:
                extra["password"] = f"hunter{index}"
            out.append(("checkout step %s done", (index % 5,), extra))
        else:
            out.append(("cache miss for key user:%s:profile after %sms", (index, index % 90), {}))
    return out


def _provider(mode: str) -> LoggerProvider:
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(_Drop()))
    if mode == "secrets":
        install_on_provider(provider, secrets_redactor(environ={}))
    elif mode == "all":
        install_on_provider(provider, Redactor.from_config(None, environ={"OTEL_AUDIT_HMAC_KEY": "bench-key-0123456789abcdef"}))
    return provider


def _pass(provider: LoggerProvider, lines: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> float:
    from otel_audit.redaction.logs import installed_processor

    processor = installed_processor(provider)
    if processor is not None:
        processor.redactor.forget_clean_values()
    handler = LoggingHandler(logger_provider=provider)
    log = logging.getLogger("bench-app")
    log.propagate = False
    log.handlers = [handler]
    log.setLevel(logging.INFO)
    started = time.perf_counter()
    for message, args, extra in lines:
        log.info(message, *args, extra=extra)
    elapsed = time.perf_counter() - started
    log.handlers = []
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    lines = _lines(args.records)
    providers = {mode: _provider(mode) for mode in MODES}
    best = {mode: float("inf") for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            best[mode] = min(best[mode], _pass(providers[mode], lines))
    per_record = {mode: best[mode] / len(lines) * 1e6 for mode in MODES}
    result = {
        "records": len(lines),
        "microseconds_per_record": {mode: round(value, 2) for mode, value in per_record.items()},
        "redaction_microseconds_per_record": {
            mode: round(per_record[mode] - per_record["off"], 2) for mode in MODES if mode != "off"
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{len(lines)} app log records, best of {args.rounds} interleaved passes")
        for mode in MODES:
            extra = "" if mode == "off" else f"  (+{per_record[mode] - per_record['off']:.1f} us redaction)"
            print(f"  {mode:8s} {per_record[mode]:7.1f} us/record{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
