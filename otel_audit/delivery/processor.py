"""The durable log record processor: spool first, export later, delete only what was acknowledged.

Replaces the SDK's BatchLogRecordProcessor for otel-audit's own records, because that one drops
records when its queue is full, ignores export failures and discards its queue at shutdown.

Flow of one record::

    caller thread   append: chain identity stamped, canonical bytes (typed JSON) -> sealed and
                    appended at once (ack ``write``, empty queue) or queued -> wait until durable
    writer thread   group commit (``commit.py``): seal the chain in queue order, one write
                    (+ fdatasync), wake callers; background fsync and ``chain.state``
    exporter thread adopt dead processes' spools (``adoption.py``), then read spooled frames ->
                    exporter (``sender.py``: sink lines or ReadableLogRecords) -> ack -> delete,
                    retrying failures with exponential backoff and jitter (at-least-once)

``ack`` decides when ``emit`` returns: ``write`` (default: in the kernel, survives the process
being killed), ``fsync`` (on disk: survives power loss) or ``queued`` (in memory: fastest, a crash
loses the last few milliseconds). Everything is bounded: the queue by count, the spool by bytes,
with the overflow policy deciding what happens at the limit.

Around that: fail-closed admission (:meth:`DurableLogRecordProcessor.admit`) holds a disk
reservation (``reserve.py``); a record that is lost anyway keeps its sequence number and goes into
the loss ledger (``loss.py``), declared in the chain once the spool accepts again; checkpoint
records are written at an interval and copied, with the chain's other landmarks, to the
checkpoint file. The processor's options and error are in ``options.py``, its Logs API logger in
``logger.py``.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any, Callable

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_audit._logs_compat import LogRecordProcessor, SeverityNumber
from otel_audit.delivery import intents as intents_mod
from otel_audit.delivery import spool as spool_mod
from otel_audit.delivery.adoption import adopt_dead_spools
from otel_audit.delivery.canonical import CHAIN_ALG, CHAIN_ID, CHAIN_KEY_ID, canonical_parts
from otel_audit.delivery.chain import ChainKey, ChainState
from otel_audit.delivery.commit import FAILED, PENDING, SYNCED, WRITTEN, GroupCommit
from otel_audit.delivery.logger import DurableLogger
from otel_audit.delivery.loss import LossLedger
from otel_audit.delivery.options import ACK_MODES, OVERFLOW_POLICIES, DeliveryOptions, RecordNotDurable
from otel_audit.delivery.positions import evicted_seqs
from otel_audit.delivery.reserve import Reservation
from otel_audit.delivery.sender import BatchSender
from otel_audit.delivery.spool import ProcessSpool
from otel_audit.delivery.telemetry import DeliveryStats, register_metrics
from otel_audit.errors import containment

__all__ = ["ACK_MODES", "OVERFLOW_POLICIES", "DeliveryOptions", "DurableLogRecordProcessor", "DurableLogger",
           "RecordNotDurable", "current_processor"]

_time_ns = time.time_ns
_SEVERITY_VALUES = {member: member.value for member in SeverityNumber}  # an enum's .value is a descriptor call
_FRAME_OVERHEAD = 200  # header + trailer, for the size check before sealing


_live: "weakref.WeakSet[DurableLogRecordProcessor]" = weakref.WeakSet()
_current: "weakref.ref[DurableLogRecordProcessor] | None" = None


def current_processor() -> "DurableLogRecordProcessor | None":
    return _current() if _current is not None else None


def _after_fork_in_child() -> None:
    for processor in list(_live):
        processor._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
_getpid = os.getpid


class DurableLogRecordProcessor(GroupCommit, LogRecordProcessor):
    """See the module docstring. ``exporter_factory`` is called again in a forked child, so the
    child never shares the parent's connections. The writer side (sealing, the group commit, the
    background fsync) is :class:`~otel_audit.delivery.commit.GroupCommit`, in its own file."""

    def __init__(self, exporter_factory: Callable[[], Any], options: DeliveryOptions, key: ChainKey,
                 resource: Resource, scope: InstrumentationScope, first_exporter: Any = None) -> None:
        global _current
        self.exporter_factory = exporter_factory
        self._first_exporter = (os.getpid(), first_exporter) if first_exporter is not None else None
        self.options = options
        self.key = key
        self.resource = resource
        self.scope = scope
        self._init_process_state()
        self.chain = ChainState()
        # Called at adoption for each intent a dead process left unresolved (the runtime turns it
        # into an interrupted record through its pipeline); see delivery/intents.py.
        self.on_interrupted: Callable[[intents_mod.Intent, Any], None] | None = None
        # Called with a loss summary once the spool accepts again; writes the records_lost record
        # and says whether it could (the runtime sets it).
        self.on_losses: Callable[[dict[str, Any]], bool] | None = None
        self.on_checkpoint: Callable[[], Any] | None = None  # writes a checkpoint record (the runtime sets it)
        self._checkpoint_every = options.checkpoint_records or (1 << 62)
        _live.add(self)
        _current = weakref.ref(self)
        register_metrics(current_processor)

    # -- per-process state -----------------------------------------------------------------------

    def _init_process_state(self) -> None:
        self.stats = DeliveryStats()
        self.losses = LossLedger()
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # writer waits for records
        self._done = threading.Condition(self._lock)  # callers wait for durability / queue room
        self._space = threading.Condition(self._lock)  # callers wait for spool room (block)
        self._queue: list[list[Any]] = []
        self._queued_bytes = 0
        self._new_parents: list[str] = []
        self._spool: ProcessSpool | None = None
        self._adopted: list[ProcessSpool] = []
        self._healthy = False
        self._last_open_attempt = 0.0
        self._started_pid = 0
        self._closing = False
        self._stop = threading.Event()
        self._wake_exporter = threading.Event()
        self._cut_linger = threading.Event()  # a flush or shutdown: stop letting a batch build up
        self._writer: threading.Thread | None = None
        self._exporter_thread: threading.Thread | None = None
        self._sender: BatchSender | None = None  # this process's exporter, created when it starts
        self._unsynced = False
        self._state_seq = 0
        self._exporter_awake = False  # appends skip waking an exporter thread that is already working
        self._size_hint = 0  # size of the last record admitted
        self._reservation: Reservation | None = None
        self._since_checkpoint = 0
        self._next_checkpoint = 0.0

    def _reset_after_fork(self) -> None:
        """In a forked child (gunicorn worker): own nothing of the parent's, start fresh lazily."""
        for spool in [self._spool, *self._adopted]:
            if spool is not None:
                spool.abandon_after_fork()
        if self._reservation is not None:
            self._reservation.abandon_after_fork()
        self.losses.detach()
        self.chain = self.chain.fork()
        self._init_process_state()

    def _ensure_started(self) -> None:
        if self._started_pid == os.getpid():
            return
        with self._lock:
            if self._started_pid == os.getpid():
                return
            self._started_pid = os.getpid()
            first = self._first_exporter
            self._first_exporter = None
            exporter = first[1] if first is not None and first[0] == os.getpid() else self.exporter_factory()
            self._sender = BatchSender(exporter, self.options, self.stats, self._stop, self._spool_room)
            self._try_open_spool_locked()
            self._next_checkpoint = time.monotonic() + (self.options.checkpoint_interval_s or float("inf"))
            self._writer = threading.Thread(target=self._writer_loop, name="otel-audit-spool-writer", daemon=True)
            self._exporter_thread = threading.Thread(target=self._exporter_loop, name="otel-audit-exporter",
                                                     daemon=True)
        self._writer.start()
        self._exporter_thread.start()

    def _try_open_spool_locked(self) -> None:
        """Create this process's spool directory (or retry after a failure, at most once a second)."""
        now = time.monotonic()
        if now - self._last_open_attempt < 1.0 and self._last_open_attempt:
            return
        self._last_open_attempt = now
        try:
            if self._spool is None:
                root = self.options.spool_dir
                spool_mod.ensure_root(root)
                spool_mod.cleanup_stale_tmp(root)
                meta = {
                    "pid": os.getpid(),
                    "chain_id": self.chain.chain_id,
                    "created_unix_nano": time.time_ns(),
                    "resource": dict(self.resource.attributes),
                    "schema_url": self.resource.schema_url,
                    "scope": {"name": self.scope.name, "version": self.scope.version},
                    "destination": self.options.destination,
                }
                self._spool = ProcessSpool.create(root, meta, self.options.segment_bytes)
                self._new_parents.extend(spool_mod.take_ended_chains(root))
                self._open_reservation()
                self.losses.attach(self._spool.path)
            else:
                spool_mod.ensure_root(self.options.spool_dir)
            self._healthy = True
        except Exception as exc:  # noqa: BLE001 - an unusable spool is a state, not a crash
            self._healthy = False
            containment.record("spool open", exc)

    # -- the hot path ------------------------------------------------------------------------------

    def on_emit(self, log_record: Any) -> None:
        """SDK interface (a ``ReadWriteLogRecord``); otel-audit's own logger calls :meth:`append`."""
        self.append(log_record.log_record)

    def logger(self, name: str, version: str | None = None) -> "DurableLogger":
        """The Logs API logger whose ``emit`` appends straight to this processor."""
        return DurableLogger(self, name, version)

    def append(self, rec: Any) -> None:
        """Make one log record durable per ``ack`` (the hot path: runs on the application's thread)."""
        severity = rec.severity_number
        self._append(rec.event_name, rec.timestamp, rec.observed_timestamp,
                     severity.value if severity is not None else None, rec.severity_text, rec.trace_id, rec.span_id,
                     rec.trace_flags, rec.body, dict(rec.attributes or {}))
        self._since_checkpoint += 1
        if self.losses.pending or self._since_checkpoint >= self._checkpoint_every:
            self._after_append()

    def append_draft(self, draft: Any) -> None:
        """:meth:`append` for the pipeline's record draft, without building an SDK ``LogRecord``
        first (its constructor was ~15k instructions of an audit record's cost). The draft's
        attributes are the pipeline's own dict: the chain identity is stamped on it in place."""
        severity = draft.severity_number
        self._append(draft.event_name, draft.timestamp, _time_ns(),
                     _SEVERITY_VALUES.get(severity, severity) if severity is not None else None, draft.severity_text,
                     draft.trace_id, draft.span_id, draft.trace_flags, draft.body, draft.attributes or {})
        self._since_checkpoint += 1
        if self.losses.pending or self._since_checkpoint >= self._checkpoint_every:
            self._after_append()

    def _after_append(self) -> None:
        """Rare work after a durable record: declare earlier losses, write a due checkpoint."""
        if self.losses.pending:
            self._declare_losses()
        if self._since_checkpoint >= self._checkpoint_every:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Write a signed checkpoint record now (its own chain seq and prev MAC are the proof)."""
        self._since_checkpoint = 0
        self._next_checkpoint = time.monotonic() + (self.options.checkpoint_interval_s or float("inf"))
        hook = self.on_checkpoint
        if hook is None or self._closing:
            return
        try:
            hook()
        except Exception as exc:  # noqa: BLE001
            containment.record("checkpoint", exc)

    def _declare_losses(self) -> None:
        """The spool accepts again: declare the gap in the chain (``audit_system.records_lost``)."""
        hook = self.on_losses
        if hook is None:
            return  # no runtime to write it: the counters and the ``lost`` file still have it
        summary = self.losses.take()
        if summary is None:
            return
        try:
            written = hook(summary)
        except Exception as exc:  # noqa: BLE001 - the record that triggered this is durable; keep going
            containment.record("loss record", exc)
            written = False
        if written:
            self.losses.declared_now(summary)
            self.stats.declared += summary["count"]
        else:  # the declaration itself was lost: declare it with the next durable record
            self.losses.put_back(summary)

    def _append(self, event_name: str | None, timestamp: int | None, observed: int | None, severity: int | None,
                severity_text: str | None, trace_id: int, span_id: int, trace_flags: Any, body: Any,
                attrs: dict[str, Any]) -> None:
        if self._started_pid != _getpid():
            self._ensure_started()
        self.stats.emitted += 1
        # The chain's identity, stamped here and only here (covered by the MAC; this process's
        # chain, a forked child's own): ``attrs`` is the caller's copy, or the pipeline's draft.
        key = self.key
        attrs[CHAIN_ID] = self.chain.chain_id
        attrs[CHAIN_KEY_ID] = key.key_id
        attrs[CHAIN_ALG] = key.alg
        canonical, attrs_offset = canonical_parts(
            event_name, timestamp, severity, severity_text,
            f"{trace_id:032x}" if trace_id else "", f"{span_id:016x}" if span_id else "", body, attrs)
        item = [canonical, observed or 0, int(trace_flags or 0), PENDING, attrs_offset]
        self._admit(item, len(canonical) + _FRAME_OVERHEAD)

    def _admit(self, item: list[Any], size: int) -> None:
        """Make one queue item durable per ``ack`` (records; intent frames have ``attrs_offset`` -1)."""
        opts = self.options
        if item[4] >= 0:
            self._size_hint = size  # what admission reserves room for
        with self._lock:
            if self._closing:
                self._refuse("shutdown")
            if not self._healthy:
                self._try_open_spool_locked()
                if not self._healthy:
                    self._refuse("spool_unavailable")
            if self._over_limit(size):
                self._handle_overflow(size)
            while len(self._queue) >= opts.max_queue:  # back-pressure, not loss
                self._done.wait(0.5)
            if opts.ack == "write" and not self._queue:
                # The common case: seal and append on the caller's thread, under the lock that
                # orders the chain. One write(2), no thread hand-off; the writer thread fsyncs
                # the group in the background.
                if self._new_parents:
                    self.chain.pending_parents.extend(self._new_parents)
                    self._new_parents = []
                status = self._commit([item], locked=True)
                if status == FAILED:
                    raise RecordNotDurable("audit spool write failed")
                if not self._exporter_awake:
                    self._exporter_awake = True
                    self._wake_exporter.set()
                return
            else:
                self._queue.append(item)
                self._queued_bytes += size
                self._work.notify()
            if opts.ack == "queued":
                return
            wanted = SYNCED if opts.ack == "fsync" else WRITTEN
            while item[3] != FAILED and item[3] < wanted:
                if not self._done.wait(1.0) and not (self._writer and self._writer.is_alive()):
                    item[3] = FAILED  # the writer thread is gone: do not wait forever
            if item[3] == FAILED:
                raise RecordNotDurable("audit spool write failed")

    def note_intent(self, event_id: str, time_unix_nano: int, attributes: dict[str, Any]) -> None:
        """Spool an intent frame (delivery/intents.py), durable per ``ack`` like a record.

        Raises :class:`RecordNotDurable` (counted as dropped) when it could not be spooled."""
        self._append_marker(intents_mod.intent_payload(event_id, time_unix_nano, _getpid(), attributes))

    def resolve_intent(self, event_id: str) -> None:
        """Spool the marker that resolves an intent without a record (the policy decided none)."""
        self._append_marker(intents_mod.resolve_payload(event_id))

    def _append_marker(self, payload: bytes) -> None:
        if self._started_pid != _getpid():
            self._ensure_started()
        self._admit([payload, 0, 0, PENDING, -1], len(payload) + _FRAME_OVERHEAD)

    def _refuse(self, reason: str) -> None:
        self.stats.drop(reason)
        self.losses.note(reason)
        raise RecordNotDurable(f"audit record not durable: {reason.replace('_', ' ')}")

    def _over_limit(self, size: int) -> bool:
        spool = self._spool
        used = (spool.disk_bytes() if spool is not None else 0) + self._queued_bytes
        return used + size > self.options.max_bytes

    def _handle_overflow(self, size: int) -> None:
        policy = self.options.overflow
        if policy == "drop_oldest" and self._spool is not None:
            while self._over_limit(size):
                seqs = evicted_seqs(self._spool)
                lost, freed = self._spool.evict_oldest()
                if not freed:
                    break
                if lost:
                    self.stats.drop("overflow_evicted", lost)
                    self.losses.note("overflow_evicted", lost, seqs)
            if not self._over_limit(size):
                return
            self._refuse("overflow")
        if policy == "block":
            deadline = time.monotonic() + self.options.block_timeout_s
            while self._over_limit(size):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._refuse("block_timeout")
                self._space.wait(min(remaining, 0.25))
            return
        self._refuse("overflow")

    def admit(self) -> bool:
        """Fail-closed admission, exact: True only when a record made now would be durable.

        Not a cached probe: with a reservation (``reserve_bytes``) the answer is "the ballast's
        bytes are allocated to us right now" - no system call while it is whole, one
        ``fallocate`` per request while the disk is full. The spool directory is re-checked on
        every refused request, not once a second.
        """
        try:
            self._ensure_started()
            with self._lock:
                if self._closing:
                    return False
                if not self._healthy:
                    self._last_open_attempt = 0.0  # admission looks at the real state every time
                    self._try_open_spool_locked()
                    if not self._healthy:
                        return False
                # Room for a record the size of the last one (a request's record is about that size),
                # not just for a few frame headers: otherwise each request passes and its record fails.
                if self._over_limit(max(self._size_hint, _FRAME_OVERHEAD * 4)) and self.options.overflow != "drop_oldest":
                    return False  # ``block`` might time out after the view: not a promise of durability
                reservation = self._reservation
                if reservation is None:
                    if self.options.reserve_bytes:
                        self._open_reservation()
                        reservation = self._reservation
                    if reservation is None:
                        return not self.options.reserve_bytes
                return reservation.ensure()
        except Exception as exc:  # noqa: BLE001
            containment.record("spool check", exc)
            return False

    def _open_reservation(self) -> None:
        """Create the ballast of this process's spool (fail-closed only); a full disk leaves it
        empty, which refuses requests until :meth:`admit` can grow it."""
        if not self.options.reserve_bytes or self._spool is None or self._reservation is not None:
            return
        try:
            self._reservation = Reservation(self._spool.path / "reserve", self.options.reserve_bytes)
        except OSError as exc:
            containment.record("spool reserve", exc)
            return
        self._reservation.ensure()

    # -- exporter thread ------------------------------------------------------------------------

    def _exporter_loop(self) -> None:
        next_scan = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_scan:
                    self._adopt_orphans()
                    next_scan = time.monotonic() + self.options.orphan_scan_s
                if time.monotonic() >= self._next_checkpoint and self._healthy:
                    self._checkpoint()  # an idle chain still proves, at each interval, that it runs
                # Cleared before looking, so an append after the look wakes us (and only then:
                # appends skip the Event while we are known to be awake).
                self._exporter_awake = False
                sent = self._export_one_batch()
                if not sent:
                    self._wake_exporter.wait(0.5)
                    self._wake_exporter.clear()
                self._exporter_awake = True
                if sent < self.options.batch_records:
                    # Caught up: let the next batch build up instead of chasing single records.
                    # Each small batch costs a sink write, an ack file and GIL hand-offs with the
                    # application's threads; under load that cost more per record than the export.
                    # A flush or shutdown cuts the wait short: it wants the records out now.
                    if self._cut_linger.wait(self.options.export_linger_s):
                        self._cut_linger.clear()
            except Exception as exc:  # noqa: BLE001 - keep delivering whatever happens
                containment.record("exporter loop", exc)
                self._stop.wait(1.0)

    def _adopt_orphans(self) -> None:
        own = self._spool.path if self._spool is not None else None
        skip = {s.path for s in self._adopted} | ({own} if own is not None else set())
        for adopted in adopt_dead_spools(self.options.spool_dir, skip, self.options.segment_bytes, self.scope.name,
                                         self.on_interrupted):
            if adopted.parent is not None:
                with self._lock:
                    self._new_parents.append(adopted.parent)
            if adopted.lost_pending:
                self.losses.adopt(adopted.chain_id, adopted.lost_pending)
            self._adopted.append(adopted.spool)
        if self.losses.pending and self._healthy:
            self._declare_losses()

    def _export_one_batch(self) -> int:
        """Export the next batch (adopted spools first). Returns its size, 0 when nothing was sent."""
        for orphan in list(self._adopted):
            if orphan.is_drained():
                orphan.close(remove=True)
                self._adopted.remove(orphan)
                continue
            sent = self._sender.send(orphan, orphan.resource_obj, orphan.scope_obj)
            if sent:
                return sent
            orphan.close(remove=orphan.is_drained())
            self._adopted.remove(orphan)
        spool = self._spool
        if spool is None:
            return 0
        return self._sender.send(spool, self.resource, self.scope)

    def _spool_room(self) -> None:
        """A batch was acknowledged and deleted: wake callers waiting for spool room (``block``)."""
        with self._lock:
            self._space.notify_all()

    # -- status / flush / shutdown --------------------------------------------------------------------

    def _export_busy(self) -> bool:
        return self._sender is not None and self._sender.busy

    def spool_status(self) -> dict[str, Any]:
        spool = self._spool
        spools = [s for s in [spool, *self._adopted] if s is not None]
        return {
            "bytes": sum(s.disk_bytes() for s in spools),
            # approximate: a batch's acks are credited to the segment its cursor ends in
            "records": max(0, sum(seg.records - seg.acked_records for s in spools for seg in list(s.segments))),
            "healthy": 1 if self._healthy else 0,
            "queued": len(self._queue),
            "adopted": len(self._adopted),
            "path": str(spool.path) if spool is not None else None,
            "chain_id": self.chain.chain_id,
            "seq": self.chain.seq,
            "lost": self.losses.total,
            "lost_undeclared": self.losses.undeclared(),
        }

    def _drained(self) -> bool:
        with self._lock:
            if self._queue:
                return False
        if self._adopted:
            return False
        return self._spool is None or self._spool.is_drained()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until everything emitted so far was exported (or the timeout passes)."""
        if self._started_pid != os.getpid():
            return True
        deadline = time.monotonic() + timeout_millis / 1000
        self._cut_linger.set()
        self._wake_exporter.set()
        while time.monotonic() < deadline:
            if self._drained():
                return True
            self._cut_linger.set()
            self._wake_exporter.set()
            time.sleep(0.02)
        return self._drained()

    def shutdown(self) -> None:
        if self._started_pid != os.getpid():
            return
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._work.notify_all()
        self.force_flush(int(self.options.shutdown_timeout_s * 1000))
        self._stop.set()
        self._cut_linger.set()
        self._wake_exporter.set()
        with self._lock:
            self._work.notify_all()
        for thread in (self._writer, self._exporter_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=2.0)
        sender = self._sender
        try:
            if sender is not None:
                sender.shutdown()
        except Exception as exc:  # noqa: BLE001
            containment.record("exporter shutdown", exc)
        if self._reservation is not None:
            self._reservation.release()
            self._reservation.close()
        spool = self._spool
        if spool is not None:
            # An intent still open (a request running at exit) keeps the spool for the next
            # process, which reports it as interrupted; undeclared losses keep the directory (and its
            # ``lost`` file) for status and the next process.
            drained = (spool.is_drained() and not self._export_busy() and not (sender is not None and sender.intents.open)
                       and not self.losses.undeclared())
            if drained:
                try:
                    spool_mod.record_ended_chain(self.options.spool_dir, self.chain.chain_id, self.chain.seq)
                except OSError:
                    drained = False  # keep the directory: its chain.state still names the end
            spool.close(remove=drained)
        for orphan in self._adopted:
            orphan.close(remove=orphan.is_drained() and not self._export_busy())
        self._adopted = []
