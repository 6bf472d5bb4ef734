"""What a durable processor is told (:class:`DeliveryOptions`) and the one error it raises.

Plain data, importing nothing of otel-audit but :mod:`otel_audit.errors`: the processor, the
configuration step (``configure.py``) and the benchmarks share it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from otel_audit.errors import OtelAuditError

OVERFLOW_POLICIES = ("block", "fail_closed", "drop_oldest", "drop_newest")
ACK_MODES = ("fsync", "write", "queued")


class RecordNotDurable(OtelAuditError):
    """The record could not be made durable (spool unavailable, full, or timed out). Counted as dropped."""


@dataclass(frozen=True)
class DeliveryOptions:
    spool_dir: Path
    max_bytes: int = 1 << 30
    overflow: str = "block"
    block_timeout_s: float = 5.0
    ack: str = "write"
    max_queue: int = 10_000
    batch_records: int = 512
    batch_bytes: int = 4 << 20
    backoff_initial_s: float = 0.25
    backoff_max_s: float = 30.0
    shutdown_timeout_s: float = 5.0
    orphan_scan_s: float = 10.0
    # After waking, and after any batch that was not full, let the next batch build up this long
    # (fewer, larger exports; far fewer GIL hand-offs with the application's threads).
    export_linger_s: float = 0.05
    # Fail-closed: bytes held in a ballast file so an admitted request's record has room
    # (delivery/reserve.py); 0 (fail-open) holds nothing and costs nothing.
    reserve_bytes: int = 0
    # Signed checkpoints (audit_system.checkpoint): every this many seconds and records (0: never),
    # also copied to ``checkpoint_path`` when set (a second destination the log store cannot cut).
    checkpoint_interval_s: float = 60.0
    checkpoint_records: int = 10_000
    checkpoint_path: Path | None = None
    # Where the exporter sends (exporter, protocol, endpoint, each with its source), kept in the spool's
    # meta.json so ``otel-audit status`` says what each process resolved.
    destination: dict | None = None

    @property
    def segment_bytes(self) -> int:
        return max(4096, min(self.max_bytes // 8, 8 << 20))
