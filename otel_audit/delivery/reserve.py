"""Fail-closed admission that holds: disk space reserved *before* the view runs.

A probe ("is the spool writable?") says nothing about the next write: the disk can fill between
the check and the record. Instead, under ``OTEL_AUDIT_FAIL_MODE=closed`` each process keeps a
ballast file of ``OTEL_AUDIT_SPOOL_RESERVE`` bytes really allocated (``posix_fallocate``) in its
spool directory. A request is admitted only while the ballast is whole; a record write that then
meets a full disk (``ENOSPC``/``EDQUOT``) releases the ballast and is retried into the space it
held, so every admitted request's record has room. Once released, admission re-grows the ballast
on each request (one ``fallocate``) and refuses until the disk has room again.

Why a ballast file and not ``fallocate(FALLOC_FL_KEEP_SIZE)`` on the segment: it is portable
(``posix_fallocate`` is emulated where the filesystem lacks it), needs no ``ctypes``, and frames are
never read past a pre-allocated, zero-filled tail.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


class Reservation:
    """A ballast file of ``size`` bytes. Only the spool's owner (under its lock) touches it."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self.whole = False
        self._lock = threading.Lock()  # the writer thread releases while a request thread may grow it
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def ensure(self) -> bool:
        """True when ``size`` bytes are held right now (no system call while the ballast is whole)."""
        if self.whole:
            return True
        with self._lock:
            if self.whole or self._fd < 0:
                return self.whole
            try:
                os.posix_fallocate(self._fd, 0, self.size)
            except OSError:
                try:
                    os.ftruncate(self._fd, 0)  # hold nothing half-way: the next attempt starts clean
                except OSError:
                    pass
                return False
            self.whole = True
            return True

    def release(self) -> bool:
        """Give the held space back to the filesystem for a record that met a full disk."""
        with self._lock:
            if self._fd < 0 or not self.whole:
                return False
            self.whole = False
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                return False
            return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.whole = False

    def abandon_after_fork(self) -> None:
        """In a forked child: the ballast is the parent's; drop the descriptor only."""
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
        self.whole = False


def is_full_disk(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FULL_DISK
