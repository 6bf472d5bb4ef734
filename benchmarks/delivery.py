"""Delivery benchmark: the durable processor vs the SDK's BatchLogRecordProcessor, same run, same
receiver (tests/support/otlp_receiver.py), counting what each lost.

    python benchmarks/delivery.py                       # ~1 minute
    python benchmarks/delivery.py --outage-records 1000000   # the 1M-records-while-down figure

Scenarios: a healthy receiver; a slow one (every export takes 20 ms); a failing one (503 for a
while, then healthy again); and an outage (nothing listening) with RSS measured while records pile
up on disk, then the receiver comes back and everything must arrive.
"""

from __future__ import annotations

import argparse
import http.server
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: E402

from otel_audit._logs_compat import BatchLogRecordProcessor, LoggerProvider, LogRecord, SeverityNumber  # noqa: E402
from otel_audit.delivery import DeliveryOptions, DurableLogRecordProcessor  # noqa: E402
from otel_audit.delivery.chain import ChainKey  # noqa: E402
from tests.support import otlp_receiver  # noqa: E402
from tests.support.otlp_receiver import OtlpReceiver  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class SlowExporter:
    """Wraps an exporter so every export takes ``delay`` seconds longer (a slow backend)."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner, self.delay = inner, delay

    def export(self, batch: Any) -> Any:
        time.sleep(self.delay)
        return self.inner.export(batch)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        self.inner.shutdown()


def make_record(i: int) -> LogRecord:
    attrs = {f"app.attr{j}": f"value-{j}" for j in range(12)}
    attrs.update({"audit.event_id": f"bench-{i}", "audit.seq": i, "audit.ok": True})  # 15 attributes
    return LogRecord(timestamp=time.time_ns(), severity_number=SeverityNumber.INFO, severity_text="INFO",
                     body="bench record", attributes=attrs, event_name="audit.bench.record")


def build(kind: str, exporter_factory: Callable[[], Any], spool_dir: Path, ack: str = "queued",
          max_bytes: int = 4 << 30) -> tuple[LoggerProvider, Any]:
    provider = LoggerProvider(resource=Resource.create({"service.name": "bench"}))
    if kind == "blrp":
        processor: Any = BatchLogRecordProcessor(exporter_factory())
    else:
        processor = DurableLogRecordProcessor(
            exporter_factory, DeliveryOptions(spool_dir=spool_dir, ack=ack, max_bytes=max_bytes, backoff_max_s=1.0),
            ChainKey.from_config("bench-chain-key-0123456789", "bench"), provider.resource,
            InstrumentationScope("otel_audit", "bench"),
        )
    provider.add_log_record_processor(processor)
    return provider, processor


def received_ids(receiver: OtlpReceiver) -> set[str]:
    with receiver._lock:  # noqa: SLF001
        return {r.attributes.get("audit.event_id") for r in receiver.records}


def emit(logger: Any, start: int, count: int, threads: int = 1) -> float:
    """Emit ``count`` records, returns records/s as seen by the caller(s)."""
    began = time.perf_counter()
    if threads == 1:
        for i in range(start, start + count):
            logger.emit(make_record(i))
    else:
        per = count // threads

        def work(offset: int) -> None:
            for i in range(offset, offset + per):
                logger.emit(make_record(i))

        workers = [threading.Thread(target=work, args=(start + t * per,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        count = per * threads
    return count / (time.perf_counter() - began)


def logger_for(provider: Any, processor: Any) -> Any:
    """The logger each processor is used with: the SDK's for BLRP, otel-audit's own (DurableLogger,
    which skips the SDK's per-attribute re-validation) for the durable processor, as in the runtime."""
    return processor.logger("otel_audit", "bench") if isinstance(processor, DurableLogRecordProcessor) \
        else provider.get_logger("otel_audit", "bench")


def scenario(name: str, kind: str, receiver: OtlpReceiver, count: int, tmp: Path, *, delay: float = 0.0,
             fail_for: float = 0.0, ack: str = "queued", threads: int = 1, settle: float = 30.0) -> dict[str, Any]:
    with receiver._lock:  # noqa: SLF001
        receiver.records.clear()
    endpoint = f"{receiver.endpoint}/v1/logs"

    def factory() -> Any:
        exporter = OTLPLogExporter(endpoint=endpoint, timeout=2)
        return SlowExporter(exporter, delay) if delay else exporter

    provider, processor = build(kind, factory, tmp / f"{name}-{kind}-{ack}", ack=ack)
    logger = logger_for(provider, processor)
    if fail_for:
        receiver.fail_with = 503
    rate = emit(logger, 0, count, threads)
    if fail_for:
        time.sleep(fail_for)
        receiver.fail_with = None
    deadline = time.monotonic() + settle
    expected = {f"bench-{i}" for i in range(count if threads == 1 else (count // threads) * threads)}
    if kind == "blrp":
        provider.force_flush(int(settle * 1000))
    while time.monotonic() < deadline and not expected <= received_ids(receiver):
        time.sleep(0.1)
    got = received_ids(receiver) & expected
    provider.shutdown()
    return {"scenario": name, "processor": kind if kind == "blrp" else f"durable/{ack}", "threads": threads,
            "emit_rate": rate, "emitted": len(expected), "lost": len(expected) - len(got)}


def outage(receiver_port: int, count: int, tmp: Path) -> dict[str, Any]:
    """Nothing listens while ``count`` records are emitted; then the receiver starts."""

    class FixedPort(http.server.ThreadingHTTPServer):
        def __init__(self, address: Any, handler: Any) -> None:
            super().__init__((address[0], receiver_port), handler)

    endpoint = f"http://127.0.0.1:{receiver_port}/v1/logs"
    provider, processor = build("durable", lambda: OTLPLogExporter(endpoint=endpoint, timeout=1), tmp / "outage",
                                ack="queued")
    logger = logger_for(provider, processor)
    logger.emit(make_record(-1))  # start the threads before measuring
    time.sleep(0.2)
    rss_before = rss_mb()
    peak = rss_before
    began = time.perf_counter()
    step = max(count // 20, 1)
    for start in range(0, count, step):
        emit(logger, start, min(step, count - start))
        peak = max(peak, rss_mb())
    rate = count / (time.perf_counter() - began)
    emit_growth = peak - rss_before  # the receiver (in this process, keeping every record) is not up yet
    spooled_mb = processor.spool_status()["bytes"] / 1e6
    original = otlp_receiver.ThreadingHTTPServer
    otlp_receiver.ThreadingHTTPServer = FixedPort
    try:
        receiver = OtlpReceiver()
    finally:
        otlp_receiver.ThreadingHTTPServer = original
    with receiver:
        began = time.perf_counter()
        expected = {f"bench-{i}" for i in range(count)}
        # The in-process receiver decodes every protobuf under the same GIL, so draining runs at
        # about 1.5k records/s here: allow count/1000 s. What has not arrived by then is either
        # still in the spool (late, not lost) or lost; the two are reported apart.
        deadline = time.monotonic() + max(120, count / 1000)
        while time.monotonic() < deadline and not expected <= received_ids(receiver):
            time.sleep(0.5)
        drain = time.perf_counter() - began
        missing = len(expected - received_ids(receiver))
        still_spooled = processor.spool_status().get("records", 0)
    provider.shutdown()
    return {"scenario": "outage", "emitted": count, "emit_rate": rate, "rss_growth_mb": emit_growth,
            "spool_mb": spooled_mb, "drain_s": drain, "lost": max(0, missing - still_spooled),
            "still_spooled": still_spooled}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="records per scenario (default 20000)")
    parser.add_argument("--outage-records", type=int, default=100_000, help="records emitted while the receiver is down")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="otel-audit-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with OtlpReceiver() as receiver:
            for kind, ack, threads in (("blrp", "-", 1), ("durable", "queued", 1), ("durable", "write", 1),
                                       ("durable", "fsync", 16)):
                rows.append(scenario("healthy", kind, receiver, args.records, tmp, ack=ack, threads=threads))
            for kind in ("blrp", "durable"):
                rows.append(scenario("slow-20ms", kind, receiver, args.records, tmp, delay=0.02, settle=60))
            for kind in ("blrp", "durable"):
                rows.append(scenario("failing-3s", kind, receiver, args.records, tmp, fail_for=3.0, settle=30))
        placeholder = OtlpReceiver()
        port = placeholder.port
        placeholder.server.server_close()
        out = outage(port, args.outage_records, tmp)
    print(f"{'scenario':<12} {'processor':<16} {'threads':>7} {'emit rec/s':>11} {'emitted':>8} {'lost':>7}")
    for row in rows:
        print(f"{row['scenario']:<12} {row['processor']:<16} {row['threads']:>7} {row['emit_rate']:>11.0f} "
              f"{row['emitted']:>8} {row['lost']:>7}")
    blrp = next(r for r in rows if r["processor"] == "blrp" and r["scenario"] == "healthy")["emit_rate"]
    queued = next(r for r in rows if r["processor"] == "durable/queued" and r["scenario"] == "healthy")["emit_rate"]
    print(f"\ndurable/queued emit rate = {queued / blrp:.2f}x BLRP (target >= 0.5x, 0 lost)")
    print(f"outage: {out['emitted']} records emitted at {out['emit_rate']:.0f}/s with nothing listening; "
          f"spool {out['spool_mb']:.0f} MB on disk; RSS growth while down {out['rss_growth_mb']:.1f} MB (target <= 50); "
          f"drained for {out['drain_s']:.1f}s after the receiver came back; still spooled (late, not lost) "
          f"{out['still_spooled']}; lost {out['lost']}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OTEL_PYTHON_LOG_LEVEL", "error")
    import logging

    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
    sys.exit(main())
