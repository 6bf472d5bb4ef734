"""The exporter thread takes freshly written frames from memory, and gets what the file holds.

``ProcessSpool.append`` keeps the payloads it just wrote (bounded); ``read_batch`` hands those out
instead of reading them back, and reads the file for everything memory no longer (or never) held.
Either way a batch is the same payloads at the same cursor positions as reading the file alone.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from otel_audit.delivery import spool as spool_mod
from otel_audit.delivery.spool import ProcessSpool, encode_frame


def _spool(root, segment_bytes: int = 1 << 20) -> ProcessSpool:
    return ProcessSpool.create(root, {"chain_id": "c" * 32, "pid": os.getpid()}, segment_bytes)


def _append(spool: ProcessSpool, payloads: list[bytes]) -> None:
    spool.append(b"".join(encode_frame(p) for p in payloads), len(payloads), payloads)


def _drain(spool: ProcessSpool, max_records: int, max_bytes: int) -> list[tuple[list[bytes], tuple[int, int]]]:
    batches = []
    while True:
        payloads, position = spool.read_batch(max_records, max_bytes)
        if not payloads:
            return batches
        batches.append((payloads, position))
        spool.ack(position, len(payloads))


def _file_only(root, spool: ProcessSpool) -> ProcessSpool:
    """The same spool directory read as an adopter reads it: from the files, nothing in memory."""
    adopted = ProcessSpool(spool.path, -1, spool.meta, spool.segment_bytes, own=False)
    adopted.segments = [spool_mod.Segment(s.number, s.path, s.path.stat().st_size) for s in spool.segments]
    return adopted


def test_fresh_frames_come_from_memory_not_from_a_second_read_of_the_file(tmp_path) -> None:
    spool = _spool(tmp_path / "s")
    payloads = [b'["r%d"]' % n for n in range(5)]
    _append(spool, payloads[:2])
    _append(spool, payloads[2:])
    # What is on disk no longer matters for these frames: they are read from what was written.
    segment = spool.segments[-1].path
    segment.write_bytes(b"\0" * segment.stat().st_size)
    got, position = spool.read_batch(100, 1 << 20)
    assert got == payloads
    assert position == (1, sum(len(encode_frame(p)) for p in payloads))
    assert not spool._recent and spool._recent_bytes == 0  # handed out once, then forgotten
    spool.close(remove=True)


def test_frames_memory_let_go_are_read_from_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(spool_mod, "RECENT_FRAMES", 3)
    spool = _spool(tmp_path / "s")
    payloads = [b'["r%d"]' % n for n in range(10)]
    for payload in payloads:
        _append(spool, [payload])
    assert len(spool._recent) == 3  # the bound holds; the seven oldest are only in the file
    batches = _drain(spool, 100, 1 << 20)
    assert [p for batch, _ in batches for p in batch] == payloads
    spool.close(remove=True)


def test_an_append_without_payloads_is_read_from_the_file(tmp_path) -> None:
    spool = _spool(tmp_path / "s")
    _append(spool, [b'["a"]'])
    spool.append(encode_frame(b'["b"]'), 1)  # e.g. a caller that does not pass them
    _append(spool, [b'["c"]'])
    assert [p for batch, _ in _drain(spool, 100, 1 << 20) for p in batch] == [b'["a"]', b'["b"]', b'["c"]']
    spool.close(remove=True)


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.lists(st.integers(1, 300), min_size=1, max_size=4), min_size=1, max_size=30),
       max_records=st.integers(1, 7), max_bytes=st.integers(1, 900), keep=st.integers(0, 12),
       segment_bytes=st.sampled_from([200, 700, 1 << 20]))
def test_batches_from_memory_equal_batches_from_the_file(tmp_path_factory, sizes, max_records, max_bytes, keep,
                                                         segment_bytes) -> None:
    root = tmp_path_factory.mktemp("spool")
    spool = _spool(root / "s", segment_bytes)
    old = spool_mod.RECENT_FRAMES
    spool_mod.RECENT_FRAMES = keep
    try:
        n = 0
        for group in sizes:
            payloads = []
            for size in group:
                payloads.append((b'["%d"' % n).ljust(size, b" ") + b"]")
                n += 1
            _append(spool, payloads)
        reference = _file_only(root, spool)
        expected = [(batch, position) for batch, position in _drain_readonly(reference, max_records, max_bytes)]
        assert _drain(spool, max_records, max_bytes) == expected
        assert sum(len(batch) for batch, _ in expected) == n
    finally:
        spool_mod.RECENT_FRAMES = old
        spool.close(remove=True)


def _drain_readonly(spool: ProcessSpool, max_records: int, max_bytes: int):
    """Batches of a file-only spool, moving its cursor without touching the files."""
    while True:
        payloads, position = spool.read_batch(max_records, max_bytes)
        if not payloads:
            return
        yield payloads, position
        spool.ack_segment, spool.ack_offset = position
