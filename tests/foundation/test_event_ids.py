"""Event ids are UUIDv7 (RFC 9562): version 7, the RFC variant, the creation millisecond in the
first 48 bits, and in generation order when sorted as text (backends dedupe and sort by them).
The native generator (``EventIds``) and the Python one are held to the same properties."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from otel_audit import ids

try:
    from otel_audit.delivery import _codec
except ImportError:  # pragma: no cover - a build without cargo: the Python generator is still tested
    _codec = None

#: Only the native cases skip where the module is not built.
needs_native = pytest.mark.skipif(_codec is None, reason="the native module is not built (no cargo)")
KINDS = [pytest.param("native", marks=needs_native), "python"]


def _generator(kind: str):
    return _codec.EventIds(12345).next if kind == "native" else ids.new_event_id_py


@needs_native
def test_the_runtime_uses_the_native_generator_where_it_is_built() -> None:
    assert isinstance(ids.new_event_id.__self__, _codec.EventIds)


@pytest.mark.parametrize("kind", KINDS)
def test_event_ids_are_uuid7_with_their_millisecond_and_sort_in_generation_order(kind: str) -> None:
    new_event_id = _generator(kind)
    before = time.time_ns() // 1_000_000
    made = [new_event_id() for _ in range(20_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == len(made)
    assert sorted(made) == made
    for text in made[:: 997]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after + 1  # +1: a millisecond borrowed when the counter ran out


@pytest.mark.parametrize("kind", KINDS)
def test_ids_in_one_millisecond_count_up_and_borrow_the_next_when_the_counter_runs_out(kind: str, monkeypatch) -> None:
    frozen_ms = 1_700_000_000_000
    if kind == "native":
        at = _codec.EventIds(7).at
        made = [at(frozen_ms) for _ in range(0x1001 + 1)]
    else:
        monkeypatch.setattr(ids, "_last_ms", 0)
        made = [ids.new_event_id_py(_time_ns=lambda: frozen_ms * 1_000_000) for _ in range(0x1001 + 1)]
    stamps = [(uuid.UUID(text).int >> 80, (uuid.UUID(text).int >> 64) & 0xFFF) for text in made]
    assert stamps[0] == (1_700_000_000_000, 0) and stamps[0xFFF] == (1_700_000_000_000, 0xFFF)
    assert stamps[0x1000] == (1_700_000_000_001, 0)  # borrowed: still after every earlier id
    assert sorted(made) == made


@needs_native
def test_a_clock_that_goes_back_keeps_the_native_ids_in_order() -> None:
    at = _codec.EventIds(1).at
    made = [at(1_700_000_000_005), at(1_700_000_000_001), at(1_700_000_000_006)]
    assert sorted(made) == made and [uuid.UUID(t).int >> 80 for t in made] == [1_700_000_000_005] * 2 + [1_700_000_000_006]


@needs_native
def test_the_random_bits_differ_by_seed_and_change_on_reseed() -> None:
    """Two generators (two processes) at the same millisecond share nothing but the stamp; a
    reseeded one (a forked child) does not repeat what it would have drawn."""
    low = lambda text: uuid.UUID(text).int & ((1 << 62) - 1)  # noqa: E731
    a, b = _codec.EventIds(1), _codec.EventIds(2)
    assert low(a.at(1_700_000_000_000)) != low(b.at(1_700_000_000_000))
    same, other = _codec.EventIds(3), _codec.EventIds(3)
    assert same.at(5) == other.at(5)
    other.reseed(4)
    assert same.at(6) != other.at(6)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id at the parent's state, reseeded by the at-fork hook
        os.write(write, ids.new_event_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    parent = ids.new_event_id()
    assert uuid.UUID(child).int & ((1 << 62) - 1) != uuid.UUID(parent).int & ((1 << 62) - 1)
