"""Every loss is evidence: the ledger of records that could not be made durable.

A lost record still takes its place in the chain: it **consumes a sequence number** (sealed records
whose write failed keep theirs; records refused before sealing get the next ones when the chain
moves on). So a loss is a gap in the chain even if nothing else survives, and ``verify`` sees it.
Once the spool accepts again, an ``audit.audit_system.records_lost`` record written into the chain
declares the gap (count, first/last time, reasons, the sequence numbers skipped) and ``verify``
reports it as a declared gap instead of a deletion. The running totals are also kept in a small
``lost`` file in the process's spool directory (pre-allocated, overwritten in place, so it can be
updated on a full disk), which ``otel-audit status`` reads.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

LOSS_FILE = "lost"
LOSS_FILE_SIZE = 1024


def format_ranges(seqs: list[int]) -> list[str]:
    """``[3, 4, 5, 9]`` -> ``["3-5", "9"]``."""
    out: list[str] = []
    for seq in sorted(set(seqs)):
        if out and "-" in out[-1] and int(out[-1].split("-")[1]) == seq - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{seq}"
        elif out and "-" not in out[-1] and int(out[-1]) == seq - 1:
            out[-1] = f"{out[-1]}-{seq}"
        else:
            out.append(str(seq))
    return out


def parse_ranges(values: Any) -> set[int]:
    """The inverse of :func:`format_ranges`; malformed entries are ignored (the MAC vouches for them)."""
    seqs: set[int] = set()
    for value in values or ():
        low, _, high = str(value).partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            first, last = int(low), int(high or low)
            if last - first <= 10_000_000:
                seqs.update(range(first, last + 1))
    return seqs


class _Pending:
    __slots__ = ("count", "first_ns", "last_ns", "reasons", "seqs")

    def __init__(self) -> None:
        self.count = 0
        self.first_ns = 0
        self.last_ns = 0
        self.reasons: Counter[str] = Counter()
        self.seqs: list[int] = []

    def merge(self, other: "_Pending") -> None:
        self.count += other.count
        self.first_ns = min(x for x in (self.first_ns, other.first_ns) if x) if self.first_ns or other.first_ns else 0
        self.last_ns = max(self.last_ns, other.last_ns)
        self.reasons.update(other.reasons)
        self.seqs.extend(other.seqs)

    def summary(self) -> dict[str, Any]:
        return {"count": self.count, "first_unix_nano": self.first_ns, "last_unix_nano": self.last_ns,
                "reasons": dict(self.reasons), "seqs": format_ranges(self.seqs)}


class LossLedger:
    """Thread-safe: losses are noted on application threads and on the spool writer thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.declared = 0
        self.unsealed = 0  # refused before sealing: they take the next sequence numbers
        self.pending = False  # read without the lock on the hot path
        self._pending: _Pending | None = None
        self._foreign: list[dict[str, Any]] = []  # undeclared losses of dead processes' chains (adopted)
        self._fd = -1

    def note(self, reason: str, count: int = 1, seqs: range | None = None) -> None:
        """``count`` records were lost; ``seqs``: the sequence numbers they had consumed (None:
        not sealed yet - they consume the next ones, see :meth:`take_unsealed`)."""
        now = time.time_ns()
        with self._lock:
            self.total += count
            pending = self._pending or _Pending()
            self._pending = pending
            pending.count += count
            pending.first_ns = pending.first_ns or now
            pending.last_ns = now
            pending.reasons[reason] += count
            if seqs is not None:
                pending.seqs.extend(seqs)
            else:
                self.unsealed += count
            self.pending = True
        self._persist()

    def take_unsealed(self, next_seq: int) -> int:
        """Called by whoever seals, just before sealing at ``next_seq``: how many numbers to skip."""
        if not self.unsealed:
            return 0
        with self._lock:
            skip, self.unsealed = self.unsealed, 0
            if self._pending is not None:
                self._pending.seqs.extend(range(next_seq, next_seq + skip))
        return skip

    def take(self) -> dict[str, Any] | None:
        """The undeclared losses (to be declared now), or None. Losses still waiting for their
        sequence numbers stay pending."""
        with self._lock:
            if self._foreign:
                summary = self._foreign.pop(0)
                self.pending = bool(self._foreign) or self._pending is not None
                return summary
            pending = self._pending
            if pending is None or self.unsealed:
                return None
            self._pending = None
            self.pending = False
        return pending.summary()

    def adopt(self, chain_id: str, summary: dict[str, Any]) -> None:
        """A dead process's undeclared losses (from its ``lost`` file), to be declared in this
        process's chain on its behalf (``audit.lost.chain_id`` names the dead chain)."""
        with self._lock:
            self._foreign.append(dict(summary, chain_id=chain_id))
            self.pending = True

    def put_back(self, summary: dict[str, Any]) -> None:
        """The declaration could not be written: keep the losses pending."""
        if summary.get("chain_id"):
            with self._lock:
                self._foreign.append(summary)
                self.pending = True
            return
        back = _Pending()
        back.count = summary["count"]
        back.first_ns, back.last_ns = summary["first_unix_nano"], summary["last_unix_nano"]
        back.reasons.update(summary["reasons"])
        back.seqs.extend(parse_ranges(summary["seqs"]))
        with self._lock:
            if self._pending is not None:
                back.merge(self._pending)
            self._pending = back
            self.pending = True

    def declared_now(self, summary: dict[str, Any]) -> None:
        if summary.get("chain_id"):
            return  # another process's losses: not in this process's totals
        with self._lock:
            self.declared += summary["count"]
        self._persist()

    def undeclared(self) -> int:
        return self.total - self.declared

    # -- the on-disk copy, for ``otel-audit status`` --------------------------------------------

    def attach(self, directory: Path) -> None:
        """Pre-allocate the ``lost`` file of a process spool (so updates need no new disk space)."""
        try:
            self._fd = os.open(directory / LOSS_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            self._fd = -1
            return
        self._persist()

    def detach(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = -1

    def _persist(self) -> None:
        fd = self._fd
        if fd < 0:
            return
        with self._lock:
            pending = self._pending.summary() if self._pending is not None else None
            data = {"total": self.total, "declared": self.declared, "pending": pending}
        blob = json.dumps(data).encode()
        if len(blob) >= LOSS_FILE_SIZE:  # too many ranges to keep: the counts are what status shows
            data["pending"] = dict(pending or {}, seqs=["..."])
            blob = json.dumps(data).encode()
        try:
            os.pwrite(fd, blob.ljust(LOSS_FILE_SIZE), 0)
        except OSError:
            pass  # best effort: the counters in memory and the metrics still have it


def read_loss_file(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / LOSS_FILE).read_bytes().strip() or b"{}")
    except (OSError, ValueError):
        return {}
