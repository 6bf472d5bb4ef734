"""A batch is whole frames within the byte budget; a frame larger than the budget goes alone, so
no budget, however small, keeps a spooled record from being exported."""

from __future__ import annotations

import os

import pytest

from otel_audit.delivery.spool import ProcessSpool, encode_frame


@pytest.mark.parametrize("max_bytes", [1, 7, 8, 20, 1 << 20])
def test_every_frame_is_read_back_in_order_whatever_the_byte_budget(tmp_path, max_bytes) -> None:
    spool = ProcessSpool.create(tmp_path / "s", {"chain_id": "c" * 32, "pid": os.getpid()}, 1 << 20)
    payloads = [b'["record %d"]' % n for n in range(6)]
    spool.append(b"".join(encode_frame(p) for p in payloads), len(payloads))
    read: list[bytes] = []
    for _ in range(20):
        batch, position = spool.read_batch(4, max_bytes)
        if not batch:
            break
        assert len(batch) <= 4 and (len(batch) == 1 or sum(len(encode_frame(p)) for p in batch) <= max_bytes)
        read += batch
        spool.ack(position, len(batch))
    assert read == payloads
    spool.close(remove=True)
