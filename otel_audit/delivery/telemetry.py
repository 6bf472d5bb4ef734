"""Self-telemetry: what the durable processor did with every record, through the OTel metrics API.

Counters live in plain attributes (cheap on the hot path); observable instruments read them when
a metrics exporter collects. Nothing is ever dropped silently: every record that did not become
durable is counted in ``dropped`` with a reason.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

COUNTERS = ("emitted", "spooled", "exported", "retried", "dropped", "failed", "refused", "declared")

DESCRIPTIONS = {
    "emitted": "Audit records handed to the durable processor.",
    "spooled": "Audit records made durable in the local spool.",
    "exported": "Audit records acknowledged by the exporter (and deleted from the spool).",
    "retried": "Audit records sent again after a failed export attempt.",
    "dropped": "Audit records lost: never made durable, or evicted by drop_oldest (attribute: reason).",
    "failed": "Failed export attempts.",
    "refused": "Requests refused before the view because the spool could not accept (fail-closed).",
    "declared": "Lost audit records whose gap was declared in the chain (audit.audit_system.records_lost).",
}


@dataclass
class DeliveryStats:
    emitted: int = 0
    spooled: int = 0
    exported: int = 0
    retried: int = 0
    dropped: int = 0
    failed: int = 0
    refused: int = 0
    declared: int = 0
    dropped_by_reason: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def drop(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.dropped += count
            self.dropped_by_reason[reason] += count

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in COUNTERS}
        out["dropped_by_reason"] = dict(self.dropped_by_reason)
        return out


_registered = False
_register_lock = threading.Lock()
_source: Callable[[], Any] | None = None


def register_metrics(source: Callable[[], Any]) -> None:
    """Create the observable instruments once per process; ``source()`` returns the live processor."""
    global _registered, _source
    _source = source
    with _register_lock:
        if _registered:
            return
        _registered = True
    try:
        from opentelemetry import metrics
        from opentelemetry.metrics import CallbackOptions, Observation
    except ImportError:  # pragma: no cover - the API is a hard dependency
        return
    meter = metrics.get_meter("otel_audit")

    def counter_callback(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            processor = _source() if _source else None
            if processor is None:
                return []
            stats = processor.stats
            if name == "dropped":
                reasons = dict(stats.dropped_by_reason) or {"none": 0}
                return [Observation(value, {"reason": reason}) for reason, value in reasons.items()]
            return [Observation(getattr(stats, name))]

        return callback

    for name in COUNTERS:
        meter.create_observable_counter(
            f"otel_audit.records.{name}", callbacks=[counter_callback(name)], unit="{record}",
            description=DESCRIPTIONS[name],
        )

    def gauge(attr: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            processor = _source() if _source else None
            if processor is None:
                return []
            return [Observation(processor.spool_status()[attr])]

        return callback

    meter.create_observable_gauge("otel_audit.spool.bytes", callbacks=[gauge("bytes")], unit="By",
                                  description="Bytes of audit records on disk waiting for export.")
    meter.create_observable_gauge("otel_audit.spool.healthy", callbacks=[gauge("healthy")],
                                  description="1 when the spool accepts records, 0 when it cannot.")
    meter.create_observable_gauge("otel_audit.records.lost_undeclared", callbacks=[gauge("lost_undeclared")],
                                  unit="{record}",
                                  description="Lost audit records not yet declared in the chain (the spool "
                                  "has not accepted a record since).")
