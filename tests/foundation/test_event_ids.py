"""Event ids are UUIDv7 (RFC 9562): version 7, the RFC variant, the creation millisecond in the
first 48 bits, and in generation order when sorted as text (backends dedupe and sort by them)."""

from __future__ import annotations

import time
import uuid

from otel_audit import ids
from otel_audit.ids import new_event_id


def test_event_ids_are_uuid7_with_their_millisecond_and_sort_in_generation_order() -> None:
    before = time.time_ns() // 1_000_000
    made = [new_event_id() for _ in range(20_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == len(made)
    assert sorted(made) == made
    for text in made[:: 997]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after + 1  # +1: a millisecond borrowed when the counter ran out


def test_ids_in_one_millisecond_count_up_and_borrow_the_next_when_the_counter_runs_out(monkeypatch) -> None:
    frozen = 1_700_000_000_000 * 1_000_000
    monkeypatch.setattr(ids, "_last_ms", 0)
    made = [new_event_id(_time_ns=lambda: frozen) for _ in range(0x1001 + 1)]
    stamps = [(uuid.UUID(text).int >> 80, (uuid.UUID(text).int >> 64) & 0xFFF) for text in made]
    assert stamps[0] == (1_700_000_000_000, 0) and stamps[0xFFF] == (1_700_000_000_000, 0xFFF)
    assert stamps[0x1000] == (1_700_000_000_001, 0)  # borrowed: still after every earlier id
    assert sorted(made) == made
