"""Where spooled frames sit in the chain, read from the frames themselves (their trailers).

``chain.state`` lags by up to one background sync, so adoption and ``drop_oldest`` eviction read
the sequence numbers of the frames on disk instead.
"""

from __future__ import annotations

from otel_audit.delivery import frames as frames_mod
from otel_audit.delivery import intents as intents_mod
from otel_audit.delivery import spool as spool_mod
from otel_audit.delivery.spool import ProcessSpool


def evicted_seqs(spool: ProcessSpool) -> range | None:
    """Sequence numbers in the segment ``drop_oldest`` is about to evict (first..last intact frame)."""
    candidates = spool.segments[:-1] if spool.own else spool.segments
    if not candidates:
        return None
    try:
        data = candidates[0].path.read_bytes()
    except OSError:
        return None
    first = last = None
    for payload, _end in spool_mod.iter_frames(data):
        first = first or payload
        last = payload
    if first is None or last is None:
        return None
    return range(int(frames_mod.trailer(first)[2]), int(frames_mod.trailer(last)[2]) + 1)


def last_sealed_seq(spool: ProcessSpool) -> int:
    """The chain position of the last intact frame in a (dead process's) spool, 0 if none.

    chain.state lags by up to one background sync; the frames themselves are the truth. The
    newest segment is never deleted while its process lives, so the last frame is still there.
    """
    for segment in reversed(list(spool.segments)):
        try:
            data = segment.path.read_bytes()
        except OSError:
            continue
        last = None
        for payload, _end in spool_mod.iter_frames(data):
            if not intents_mod.is_marker(payload):  # intent/resolve frames are not chained
                last = payload
        if last is not None:
            try:
                return int(frames_mod.trailer(last)[2])
            except (ValueError, IndexError, TypeError):
                return 0
    return 0
