"""The exporter thread's sending step: one batch of a spool to the exporter, retried until it is
acknowledged, then acked in the spool (at-least-once; the processor decides which spool and when).

Intent and resolve frames are sifted out (the own spool's open intents hold its ack file back,
``intents.py``); the chain's landmarks are copied to the checkpoint file first; an exporter that
takes spooled payloads in its own wire form (the embedded sink's ``spooled_codec``) gets them so,
the others get SDK records (``frames.decode_record``).
"""

from __future__ import annotations

import random
import threading
from typing import Any, Callable

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_audit._logs_compat import LogExportResult
from otel_audit.delivery import frames as frames_mod
from otel_audit.delivery import intents as intents_mod
from otel_audit.delivery.options import DeliveryOptions
from otel_audit.delivery.sink import JsonLinesExporter
from otel_audit.delivery.spool import ProcessSpool
from otel_audit.delivery.telemetry import DeliveryStats
from otel_audit.errors import containment

_LANDMARK_PREFIX = b'["otel-audit/chain/1","audit.audit_system.'
_LANDMARKS = (b'start"', b'checkpoint"', b'stop"', b'records_lost"')


class BatchSender:
    """Owns this process's exporter (and the checkpoint file's writer); used by the exporter thread only.

    ``stop`` ends a retry wait (the batch stays spooled for the next process); ``on_acked`` is
    called after each acknowledged batch (the processor wakes callers waiting for spool room)."""

    def __init__(self, exporter: Any, options: DeliveryOptions, stats: DeliveryStats, stop: threading.Event,
                 on_acked: Callable[[], None]) -> None:
        self.exporter = exporter
        self.options = options
        self.stats = stats
        self.intents = intents_mod.OpenIntents()  # the open intents of the own spool
        self.busy = False  # a batch is out (shutdown keeps the spool while one is)
        self._stop = stop
        self._on_acked = on_acked
        self._digest: Any = None

    def send(self, spool: ProcessSpool, resource: Resource, scope: InstrumentationScope) -> int:
        """Export one batch of ``spool`` (retrying until it succeeds or we stop); its size, or 0."""
        opts = self.options
        start = (spool.ack_segment, spool.ack_offset)
        payloads, position = spool.read_batch(opts.batch_records, opts.batch_bytes)
        if not payloads:
            if position != start:
                spool.ack(position, 0, self.intents.hold() if spool.own else None)
            return 0
        frames_read = len(payloads)
        # Intent and resolve frames are not exported; the own spool's open ones hold the ack file.
        payloads = self.intents.sift(payloads, start) if spool.own else intents_mod.drop_markers(payloads)
        hold = self._held_position(spool, position) if spool.own else None
        if opts.checkpoint_path is not None:
            self._copy_to_digest(payloads, resource, scope)
        # An exporter may take payloads in its own wire form (the sink: JSON lines spliced from the
        # spooled bytes); the standard ones get SDK records.
        decode = getattr(self.exporter, "spooled_codec", None) or frames_mod.decode_record
        records = []
        for payload in payloads:
            try:
                records.append(decode(payload, resource, scope))
            except Exception as exc:  # noqa: BLE001 - cannot happen with an intact frame; count it
                containment.record("spool decode", exc)
                self.stats.drop("undecodable")
        attempt = 0
        self.busy = True
        try:
            while True:
                if self._export(records):
                    self.stats.exported += len(records)
                    spool.ack(position, len(payloads), hold)
                    self._on_acked()
                    return frames_read
                self.stats.failed += 1
                self.stats.retried += len(records)
                delay = min(opts.backoff_max_s, opts.backoff_initial_s * (2 ** attempt))
                attempt = min(attempt + 1, 30)
                if self._stop.wait(delay * random.uniform(0.5, 1.5)):
                    return frames_read  # stopping: the batch stays spooled for the next process
        finally:
            self.busy = False

    def _held_position(self, spool: ProcessSpool, position: tuple[int, int]) -> tuple[int, int] | None:
        """Where the ack file must stop for open intents, holding at most a quarter of the spool limit.

        An intent whose request never ends (its record failed, an adapter bug) would otherwise keep
        every later segment until the process ends, and fill the spool."""
        hold = self.intents.hold()
        while hold is not None:
            held = sum(seg.size for seg in list(spool.segments) if hold[0] <= seg.number < position[0])
            if held <= self.options.max_bytes // 4:
                break
            self.intents.release_oldest()
            containment.record("intent hold", intents_mod.HoldReleased())
            hold = self.intents.hold()
        return hold

    def _copy_to_digest(self, payloads: list[bytes], resource: Resource, scope: InstrumentationScope) -> None:
        """Copy the chain's landmarks (start, checkpoints, stop, loss declarations) to the checkpoint
        file, before the batch is exported: whoever controls the log store cannot cut what it proves."""
        skip = len(_LANDMARK_PREFIX)
        marks = [p for p in payloads if p.startswith(_LANDMARK_PREFIX) and p[skip:].startswith(_LANDMARKS)]
        if not marks:
            return
        try:
            if self._digest is None:
                self._digest = JsonLinesExporter(self.options.checkpoint_path)  # type: ignore[arg-type]
            self._digest.export([self._digest.spooled_codec(p, resource, scope) for p in marks])
            self._digest.force_flush()
        except Exception as exc:  # noqa: BLE001 - the main destination still gets them
            containment.record("checkpoint copy", exc)

    def _export(self, records: list[Any]) -> bool:
        if not records:
            return True
        try:
            result = self.exporter.export(records)
        except Exception as exc:  # noqa: BLE001 - an exporter exception is a failed attempt
            containment.record("export", exc)
            return False
        if result != LogExportResult.SUCCESS:
            return False
        flush = getattr(self.exporter, "force_flush", None)
        if getattr(self.exporter, "ack_after_flush", False) and flush is not None:
            return bool(flush())
        return True

    def shutdown(self) -> None:
        """Shut the exporter down, then the checkpoint file's writer (the caller contains errors)."""
        if self.exporter is not None:
            self.exporter.shutdown()
        if self._digest is not None:
            self._digest.shutdown()
