"""The on-disk spool: one directory per process, append-only segment files, an ack cursor.

Why segment files and not SQLite: every audit record is written exactly once and read exactly
once, in order. An append-only file gives that with one ``write`` + one ``fdatasync`` per group
commit (hundreds of records), no page or index maintenance, and trivially bounded memory; deleting
acknowledged data is unlinking whole files. SQLite in WAL mode would add a B-tree insert and a
delete per record and its own locking, for query power we never use.

Layout (everything 0700/0600)::

    SPOOL_DIR/
      ended                      chains that ended cleanly ("chain_id:last_seq" lines)
      p<pid>-<chain8>/           one per process; "lock" is flock'ed while the owner lives
        lock  meta.json  chain.state  ack  000000000001.seg ...

Frame: ``<u32 length><u32 crc32>`` + payload. A torn or corrupt tail (crash mid-write) ends the
readable part of a segment. ``fork()``ed children and restarted processes never share a directory:
a directory whose lock can be taken belongs to a dead process and is adopted (exported, deleted).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

HEADER = struct.Struct("<II")
FILE_MODE = 0o600
DIR_MODE = 0o700
STATE_SIZE = 512
ENDED_FILE = "ended"
MARKER = b"\x1d"  # first byte of an intent/resolve frame (delivery/intents.py); records start with "["


def encode_frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def iter_frames(data: bytes | memoryview, offset: int = 0) -> Iterator[tuple[bytes, int]]:
    """(payload, end offset) for each complete, intact frame; stops at the first torn/corrupt one."""
    size = len(data)
    while offset + HEADER.size <= size:
        length, crc = HEADER.unpack_from(data, offset)
        end = offset + HEADER.size + length
        if end > size:
            return
        payload = bytes(data[offset + HEADER.size:end])
        if zlib.crc32(payload) != crc:
            return
        yield payload, end
        offset = end


def split_frames_py(data: bytes, max_count: int) -> tuple[list[bytes], int]:
    """Up to ``max_count`` complete, intact payloads from the start of ``data`` (bytes) and where
    they end: :func:`iter_frames` as one loop, for the exporter's batches (no generator step per
    record). :func:`split_frames` is the native version of this where it is built."""
    payloads: list[bytes] = []
    offset, size, header = 0, len(data), HEADER.size
    unpack, crc32 = HEADER.unpack_from, zlib.crc32
    while offset + header <= size and len(payloads) < max_count:
        length, crc = unpack(data, offset)
        end = offset + header + length
        if end > size:
            break
        payload = data[offset + header:end]
        if crc32(payload) != crc:
            break
        payloads.append(payload)
        offset = end
    return payloads, offset


try:  # the same function in Rust (otel_audit/delivery/_native): a batch's frames in one call
    from otel_audit.delivery._codec import split_frames
except ImportError:  # not built (no cargo at install): the same payloads from Python
    split_frames = split_frames_py


def _open_private(path: Path, flags: int) -> int:
    return os.open(path, flags | os.O_CLOEXEC, FILE_MODE)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = _open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_root(root: Path) -> None:
    """Create the spool directory, and any missing parent, private to the owner (0700)."""
    missing = []
    path = root
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
    if not os.access(root, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "spool directory is not writable", str(root))


@dataclass
class Segment:
    number: int
    path: Path
    size: int = 0
    records: int = 0
    acked_records: int = 0


class ProcessSpool:
    """One process's spool directory. Own spools are appended to; adopted ones are only drained.

    The writer thread appends (:meth:`append`); the exporter thread reads and acknowledges
    (:meth:`read_batch`, :meth:`ack`); ``_lock`` guards the segment list between them.
    """

    def __init__(self, path: Path, lock_fd: int, meta: dict[str, Any], segment_bytes: int, own: bool) -> None:
        self.path = path
        self.lock_fd = lock_fd
        self.meta = meta
        self.segment_bytes = segment_bytes
        self.own = own
        self._lock = threading.Lock()
        self.segments: list[Segment] = []
        self._bytes = 0  # sum of the segments' sizes, kept up to date under _lock
        self.ack_segment = 1
        self.ack_offset = 0
        self._write_fd = -1
        self._state_fd = -1
        self._read_fds: dict[int, int] = {}

    # -- creation / adoption -------------------------------------------------------------------

    @classmethod
    def create(cls, root: Path, meta: dict[str, Any], segment_bytes: int) -> "ProcessSpool":
        ensure_root(root)
        name = f"p{os.getpid()}-{meta['chain_id'][:8]}"
        tmp = root / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # our own earlier attempt (a full disk): start over
        tmp.mkdir(mode=DIR_MODE)
        lock_fd = _open_private(tmp / "lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _write_atomic(tmp / "meta.json", json.dumps(meta).encode())
        except OSError:
            os.close(lock_fd)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        final = root / name
        os.rename(tmp, final)
        spool = cls(final, lock_fd, meta, segment_bytes, own=True)
        try:
            spool._state_fd = _open_private(final / "chain.state", os.O_WRONLY | os.O_CREAT)
            spool._open_segment(1)
        except OSError:
            spool.close(remove=True)  # nothing was written to it yet; the next attempt starts clean
            raise
        return spool

    @classmethod
    def try_adopt(cls, path: Path, segment_bytes: int) -> "ProcessSpool | None":
        """Claim a dead process's spool; None when its owner still lives (or it is not a spool)."""
        try:
            lock_fd = _open_private(path / "lock", os.O_RDWR)
        except OSError:
            return None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            return None
        try:
            meta = json.loads((path / "meta.json").read_bytes())
        except (OSError, ValueError):
            meta = {}
        spool = cls(path, lock_fd, meta, segment_bytes, own=False)
        spool.ack_segment, spool.ack_offset = spool._read_ack()
        for seg_path in sorted(path.glob("*.seg")):
            try:
                number = int(seg_path.stem)
            except ValueError:
                continue
            if number < spool.ack_segment:
                seg_path.unlink(missing_ok=True)
                continue
            spool.segments.append(Segment(number, seg_path, seg_path.stat().st_size))
        spool._bytes = sum(seg.size for seg in spool.segments)
        return spool

    def _read_ack(self) -> tuple[int, int]:
        try:
            seg, off = (self.path / "ack").read_text().split()
            return int(seg), int(off)
        except (OSError, ValueError):
            return 1, 0

    def _open_segment(self, number: int) -> None:
        path = self.path / f"{number:012d}.seg"
        fd = _open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        if self._write_fd >= 0:
            os.close(self._write_fd)
        self._write_fd = fd
        with self._lock:
            self.segments.append(Segment(number, path))

    # -- writer side -------------------------------------------------------------------------

    def append(self, data: bytes, records: int) -> None:
        """Append whole frames to the active segment (one ``write``); rotate when it is full.

        On failure the segment is truncated back so no partial frame stays behind.
        """
        active = self.segments[-1]
        if active.size >= self.segment_bytes:
            self._open_segment(active.number + 1)
            active = self.segments[-1]
        written = 0
        try:
            written = os.write(self._write_fd, data)
            while written < len(data):  # a short write (rare): the rest, without copying it
                written += os.write(self._write_fd, memoryview(data)[written:])
        except OSError:
            if written:
                try:
                    os.ftruncate(self._write_fd, active.size)
                except OSError:
                    self._open_segment(active.number + 1)  # leave the torn tail behind, start clean
            raise
        with self._lock:
            active.size += len(data)
            active.records += records
            self._bytes += len(data)

    def sync(self) -> None:
        os.fdatasync(self._write_fd)

    def write_state(self, chain_id: str, seq: int, mac: str) -> None:
        """Last sealed position, so whoever adopts this spool can name where the chain ended."""
        data = json.dumps({"chain_id": chain_id, "seq": seq, "mac": mac}).encode().ljust(STATE_SIZE)
        os.pwrite(self._state_fd, data[:STATE_SIZE], 0)

    def read_state(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "chain.state").read_bytes().strip() or b"{}")
        except (OSError, ValueError):
            return {}

    # -- exporter side -----------------------------------------------------------------------

    def read_batch(self, max_records: int, max_bytes: int) -> tuple[list[bytes], tuple[int, int]]:
        """Up to ``max_records`` payloads after the ack cursor, and the cursor just after them."""
        payloads: list[bytes] = []
        seg_no, offset = self.ack_segment, self.ack_offset
        while len(payloads) < max_records:
            with self._lock:
                seg = next((s for s in self.segments if s.number >= seg_no), None)
                if seg is None:
                    break
                is_last = seg is self.segments[-1]
                limit = seg.size if self.own else None
            if seg.number != seg_no:
                seg_no, offset = seg.number, 0
            fd = self._read_fd(seg)
            if fd < 0:  # evicted (drop_oldest) while we looked
                seg_no, offset = seg.number + 1, 0
                continue
            if limit is None:
                limit = os.fstat(fd).st_size
            if offset < limit:
                data = os.pread(fd, min(limit - offset, max(max_bytes, HEADER.size)), offset)
                found, got = split_frames(data, max_records - len(payloads))
                payloads += found
                if not got and len(data) >= HEADER.size:  # a single frame larger than max_bytes
                    length, _ = HEADER.unpack_from(data, 0)
                    if offset + HEADER.size + length <= limit:
                        for payload, end in iter_frames(os.pread(fd, HEADER.size + length, offset)):
                            payloads.append(payload)
                            got = end
                if got:
                    offset += got
                    if offset < limit:
                        break  # batch full; more remains in this segment
                elif self.own:
                    break
                else:
                    offset = limit  # torn or corrupt tail of a dead process's segment: nothing more to read
            if is_last:
                break  # the active segment (own) or the end of an adopted spool
            seg_no, offset = seg.number + 1, 0
        return payloads, (seg_no, offset)

    def _read_fd(self, seg: Segment) -> int:
        fd = self._read_fds.get(seg.number)
        if fd is None:
            try:
                fd = os.open(seg.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return -1
            self._read_fds[seg.number] = fd
        return fd

    def ack(self, position: tuple[int, int], records: int, hold: tuple[int, int] | None = None) -> int:
        """Move the cursor to ``position``; delete segments wholly behind it. Returns bytes freed.

        ``hold``: the persisted cursor and deletion stop there (an open intent, delivery/intents.py)
        while reading goes on from ``position``; a crash re-sends what lies between (at-least-once).
        """
        seg_no, offset = position
        if hold is not None and hold < position:
            seg_no, offset = hold
        freed = 0
        with self._lock:
            self.ack_segment, self.ack_offset = position
            for seg in self.segments:
                if seg.number == position[0]:
                    seg.acked_records += records
            done = [s for s in self.segments if s.number < seg_no and not (self.own and s is self.segments[-1])]
            for seg in done:
                self.segments.remove(seg)
                freed += seg.size
            self._bytes -= freed
        for seg in done:
            self._forget(seg)
        try:
            _write_atomic(self.path / "ack", f"{seg_no} {offset}\n".encode())
        except OSError:
            pass  # a stale cursor only means duplicates after a crash (at-least-once)
        return freed

    def _forget(self, seg: Segment) -> None:
        fd = self._read_fds.pop(seg.number, None)
        if fd is not None:
            os.close(fd)
        try:
            seg.path.unlink()
        except FileNotFoundError:
            pass

    def append_to_adopted(self, data: bytes) -> None:
        """Append whole frames to an adopted (dead process's) spool, as a new last segment.

        Not to its last segment: that may end in a torn frame, and nothing after one is read.
        Synced before returning, so a later adopter sees them even after a power loss.
        """
        with self._lock:
            number = (self.segments[-1].number if self.segments else self.ack_segment) + 1
        path = self.path / f"{number:012d}.seg"
        fd = _open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fdatasync(fd)
        finally:
            os.close(fd)
        with self._lock:
            self.segments.append(Segment(number, path, len(data)))
            self._bytes += len(data)

    def evict_oldest(self) -> tuple[int, int]:
        """Drop the oldest non-active segment (``drop_oldest``). Returns (records lost, bytes freed)."""
        with self._lock:
            candidates = self.segments[:-1] if self.own else self.segments
            if not candidates:
                return 0, 0
            seg = candidates[0]
            self.segments.remove(seg)
            self._bytes -= seg.size
            lost = max(seg.records - seg.acked_records, 0)
            if self.ack_segment <= seg.number:
                self.ack_segment, self.ack_offset = seg.number + 1, 0
        self._forget(seg)
        return lost, seg.size

    # -- accounting / teardown -----------------------------------------------------------------

    def disk_bytes(self) -> int:
        return self._bytes

    def is_drained(self) -> bool:
        with self._lock:
            if not self.segments:
                return True
            last = self.segments[-1]
            return self.ack_segment > last.number or (self.ack_segment == last.number and self.ack_offset >= last.size)

    def close(self, remove: bool) -> None:
        """Release the directory; ``remove`` deletes it (only when everything was acknowledged)."""
        for fd in list(self._read_fds.values()):
            os.close(fd)
        self._read_fds.clear()
        for fd in (self._write_fd, self._state_fd):
            if fd >= 0:
                os.close(fd)
        self._write_fd = self._state_fd = -1
        if remove:
            shutil.rmtree(self.path, ignore_errors=True)
        if self.lock_fd >= 0:
            os.close(self.lock_fd)  # closing the last descriptor releases the flock
            self.lock_fd = -1

    def abandon_after_fork(self) -> None:
        """In a forked child: drop inherited descriptors without touching files or the parent's lock."""
        for fd in [*self._read_fds.values(), self._write_fd, self._state_fd, self.lock_fd]:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._read_fds.clear()
        self._write_fd = self._state_fd = self.lock_fd = -1


def spool_dirs(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("p"))
    except OSError:
        return []


def cleanup_stale_tmp(root: Path) -> None:
    """Half-created directories of processes that died during start-up."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for path in entries:
        if path.name.startswith(".p") and path.name.endswith(".tmp") and path.is_dir():
            try:
                if time.time() - path.stat().st_mtime < 60:
                    continue
            except OSError:
                continue
            spool = ProcessSpool.try_adopt(path, 1)
            if spool is not None:
                spool.close(remove=True)


def record_ended_chain(root: Path, chain_id: str, seq: int) -> None:
    """Note a cleanly ended chain so the next process can name it as its parent."""
    if seq <= 0:
        return
    fd = _open_private(root / ENDED_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, f"{chain_id}:{seq}\n".encode())
    finally:
        os.close(fd)


def take_ended_chains(root: Path) -> list[str]:
    """Read and clear the ended-chain notes (under an exclusive lock, so exactly one process gets them)."""
    path = root / ENDED_FILE
    try:
        fd = _open_private(path, os.O_RDWR)
    except OSError:
        return []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
        os.ftruncate(fd, 0)
        return [line for line in data.decode(errors="replace").split() if ":" in line]
    finally:
        os.close(fd)


def count_frames(path: Path, start: int = 0) -> tuple[int, int]:
    """(records, bytes) readable in a segment file from ``start``."""
    try:
        data = path.read_bytes()
    except OSError:
        return 0, 0
    count = 0
    end = start
    for payload, end in iter_frames(data, start):
        count += payload[:1] != MARKER  # intent/resolve frames are not records
    return count, end - start
