"""Sealing and writing: the group commit of the durable processor's one state machine, in its own file.

:class:`GroupCommit` is mixed into :class:`~otel_audit.delivery.processor.DurableLogRecordProcessor`
and holds no state of its own: it works on the processor's (declared below, set in
``_init_process_state`` there). :meth:`GroupCommit._commit` seals a batch into the chain in queue
order and appends it to the spool in one write: on the caller's thread (ack ``write`` with an empty
queue: no thread hand-off) or on the writer thread, which also fsyncs in the background and writes
``chain.state``. A queue item is ``[canonical, observed, trace_flags, status, attrs_offset]``
(``attrs_offset`` -1: an intent or resolve frame, spooled as it is, not chained).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from otel_audit.delivery import frames as frames_mod
from otel_audit.delivery.frames import chained_frame
from otel_audit.delivery.chain import ChainKey, ChainState
from otel_audit.delivery.loss import LossLedger
from otel_audit.delivery.options import DeliveryOptions
from otel_audit.delivery.reserve import Reservation, is_full_disk
from otel_audit.delivery.spool import ProcessSpool, encode_frame
from otel_audit.delivery.telemetry import DeliveryStats
from otel_audit.errors import containment

#: A queue item's status: waiting, in the kernel, on disk, lost.
PENDING, WRITTEN, SYNCED, FAILED = 0, 1, 2, -1


class GroupCommit:
    """The processor's writer side (see the module docstring)."""

    # The processor's state used here (DurableLogRecordProcessor._init_process_state / __init__).
    options: DeliveryOptions
    key: ChainKey
    chain: ChainState
    stats: DeliveryStats
    losses: LossLedger
    _lock: threading.Lock
    _work: threading.Condition
    _done: threading.Condition
    _queue: list[list[Any]]
    _queued_bytes: int
    _new_parents: list[str]
    _spool: ProcessSpool | None
    _reservation: Reservation | None
    _healthy: bool
    _stop: threading.Event
    _wake_exporter: threading.Event
    _unsynced: bool
    _state_seq: int

    def _write_frames(self, spool: ProcessSpool, data: bytes, records: int) -> None:
        """``spool.append``; on a full disk, release the reservation and write into its space."""
        try:
            spool.append(data, records)
        except OSError as exc:
            reservation = self._reservation
            if not is_full_disk(exc) or reservation is None or not reservation.release():
                raise
            spool.append(data, records)

    def _writer_loop(self) -> None:
        sync_every = 0.2
        last_sync = time.monotonic()
        while True:
            with self._lock:
                while not self._queue and not self._stop.is_set():
                    if self._unsynced and time.monotonic() - last_sync >= sync_every:
                        break
                    self._work.wait(sync_every)
                if not self._queue and self._stop.is_set():
                    break
                batch, self._queue, self._queued_bytes = self._queue, [], 0
                self._done.notify_all()  # queue room for back-pressured callers
                if self._new_parents:
                    self.chain.pending_parents.extend(self._new_parents)
                    self._new_parents = []
            if not batch:
                self._periodic_sync()
                last_sync = time.monotonic()
                continue
            status = self._commit(batch)
            if status == SYNCED:
                last_sync = time.monotonic()
            with self._lock:
                for item in batch:
                    item[3] = status
                self._done.notify_all()
            self._wake_exporter.set()
        self._periodic_sync()

    def _periodic_sync(self) -> None:
        spool = self._spool
        if spool is None:
            return
        if self._unsynced:
            try:
                spool.sync()
                self._unsynced = False
            except OSError:
                pass
        with self._lock:
            chain_id, seq, prev = self.chain.chain_id, self.chain.seq, self.chain.prev
        if seq != self._state_seq:
            try:
                spool.write_state(chain_id, seq, prev)
                self._state_seq = seq
            except OSError:
                pass

    def _commit(self, batch: list[list[Any]], locked: bool = False) -> int:
        """Seal ``batch`` into the chain and append it; ``locked``: the caller holds ``self._lock``."""
        spool = self._spool
        if spool is None:
            self.stats.drop("spool_unavailable", len(batch))
            self.losses.note("spool_unavailable", len(batch))
            return FAILED
        chain = self.chain
        if self.losses.unsealed:  # records refused before sealing keep their numbers: a gap to declare
            chain.seq += self.losses.take_unsealed(chain.seq + 1)
        snapshot = chain.snapshot()
        frames = []
        key = self.key
        records = len(batch)
        for canonical, observed, flags, _status, attrs_offset in batch:
            if attrs_offset < 0:  # an intent/resolve frame: spooled as it is, not a record, not chained
                frames.append(encode_frame(canonical))
                records -= 1
                continue
            seq, prev, mac, parents, forked_from = chain.seal(key, canonical)
            if parents is None and forked_from is None:
                frames.append(chained_frame(canonical, attrs_offset, observed, flags, seq, prev, mac))
            else:
                frames.append(encode_frame(frames_mod.payload(canonical, attrs_offset, observed, flags, seq, prev, mac,
                                                              parents, forked_from)))
            chain.advance(seq, mac, parents is not None)
        try:
            self._write_frames(spool, frames[0] if len(frames) == 1 else b"".join(frames), records)
            status = WRITTEN
            if self.options.ack == "fsync":
                spool.sync()
                status = SYNCED
            else:
                self._unsynced = True
            # chain.state is written by the writer thread at each background sync, not per record:
            # a pwrite per record would be a second GIL hand-off on the caller's path. Adoption
            # reads the true end from the spool's last frame (positions.last_sealed_seq).
        except Exception as exc:  # noqa: BLE001 - disk full, permissions, I/O error
            # The sealed records keep their sequence numbers (a gap the records_lost record will
            # declare); prev stays the last durable MAC, and parents and the fork link not named
            # yet are named by the next durable record.
            self.losses.note("spool_write_failed", len(batch), range(snapshot[0] + 1, chain.seq + 1))
            chain.restore((chain.seq, snapshot[1], snapshot[2]))
            if locked:
                self._healthy = False
            else:
                with self._lock:
                    self._healthy = False
            containment.record("spool write", exc)
            self.stats.drop("spool_write_failed", len(batch))
            return FAILED
        self.stats.spooled += records
        return status
