"""The exporter's native read-back (``otel_audit/delivery/_native``, Rust) gives exactly what the
Python functions give: the same payloads out of a batch of frames (torn, corrupt, capped), the same
sink line for every payload it takes, and it leaves every payload off its common shape to Python."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_audit.delivery import frames, spool
from otel_audit.delivery.canonical import canonical_parts
from tests.delivery.test_frames import attributes, texts, values

codec = pytest.importorskip("otel_audit.delivery._codec",
                            reason="the native codec is not built here (no cargo when the package was installed)")

TAIL = b',"scope":{"name":"otel_audit","version":"0.1.0"},"resource":{"service.name":"shop"}}'


def _hello_payload(seq: int = 7, prev: str = "ab" * 32) -> bytes:
    attrs = {"audit.action": "request", "audit.category": "http", "http.route": "/hello",
             "http.response.status_code": 200, "audit.chain.id": "c" * 32}
    canonical, offset = canonical_parts("audit.http.request", 1764700000000000000, 9, "INFO", "", "",
                                        "anonymous request GET /hello: success", attrs)
    return frames.payload(canonical, offset, 1764700000000000001, 0, seq, prev, "cd" * 32, None, None)


def test_the_modules_pick_the_native_functions() -> None:
    assert spool.split_frames is codec.split_frames
    assert frames.sink_line is not frames.sink_line_py


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_crc32_is_zlibs(data: bytes) -> None:
    assert codec.crc32(data) == zlib.crc32(data)


@settings(max_examples=300, deadline=None)
@given(payloads=st.lists(st.binary(max_size=80), max_size=12), cut=st.integers(0, 40),
       flip=st.one_of(st.none(), st.integers(0, 2000)), max_count=st.integers(-1, 15))
def test_split_frames_matches_python_on_torn_corrupt_and_capped_batches(payloads, cut, flip, max_count) -> None:
    data = bytearray(b"".join(spool.encode_frame(p) for p in payloads))
    if flip is not None and data:
        data[flip % len(data)] ^= 0x5A
    data = bytes(data[:len(data) - cut] if cut < len(data) else data)
    assert codec.split_frames(data, max_count) == spool.split_frames_py(data, max_count)


def test_split_frames_on_a_real_batch_of_records() -> None:
    data = b"".join(spool.encode_frame(_hello_payload(seq)) for seq in range(1, 600))
    assert codec.split_frames(data, 512) == spool.split_frames_py(data, 512)
    assert len(codec.split_frames(data, 512)[0]) == 512


def test_the_common_record_is_spliced_natively_and_equals_python() -> None:
    payload = _hello_payload()
    line = codec.sink_line(payload, TAIL)
    assert line is not None  # the usual record never takes the Python path
    assert line == frames.sink_line_py(payload, TAIL)
    assert frames.sink_line(payload, TAIL) == line


@settings(max_examples=300, deadline=None)
@given(event_name=texts, ts=st.integers(0, 2**63 - 1), severity=st.one_of(st.none(), st.integers(-3, 24)),
       severity_text=texts, body=values, attrs=attributes, trace=st.booleans(),
       parents=st.one_of(st.none(), st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=3)),
       forked_from=st.one_of(st.none(), st.text(min_size=1, max_size=12)),
       prev=st.one_of(st.just(""), st.just("ab" * 32), st.text(max_size=10)))
def test_every_payload_gives_pythons_line_or_is_left_to_python(event_name, ts, severity, severity_text, body, attrs,
                                                                trace, parents, forked_from, prev) -> None:
    canonical, offset = canonical_parts(event_name, ts, severity, severity_text, "ab" * 16 if trace else "",
                                        "cd" * 8 if trace else "", body, attrs)
    payload = frames.payload(canonical, offset, 17, 1, 9, prev, "ee" * 32, parents, forked_from)
    native = codec.sink_line(payload, TAIL)
    expected = frames.sink_line_py(payload, TAIL)
    assert native is None or native == expected
    assert frames.sink_line(payload, TAIL) == expected
    if parents is None and forked_from is None and prev in ("", "ab" * 32) and "\\" not in event_name + severity_text:
        # the common shape, whatever the attributes and body hold: spliced natively
        if '"' not in event_name + severity_text and all(ord(c) < 0x7F and c >= " " for c in event_name + severity_text):
            assert native is not None


@settings(max_examples=400, deadline=None)
@given(position=st.integers(0, 10_000), byte=st.integers(0, 255), cut=st.integers(0, 400))
def test_a_damaged_payload_is_never_spliced_differently(position, byte, cut) -> None:
    """Bytes no writer makes (a flipped byte, a cut tail): the native answer is Python's, or none."""
    damaged = bytearray(_hello_payload())
    damaged[position % len(damaged)] = byte
    damaged = bytes(damaged[:len(damaged) - cut])
    native = codec.sink_line(damaged, TAIL)
    try:
        expected = frames.sink_line_py(damaged, TAIL)
    except Exception:  # noqa: BLE001 - Python cannot read it either: the native side must not answer
        assert native is None
        return
    assert native is None or native == expected


# -- the canonical attributes object (main thread) -----------------------------------------------

from otel_audit.delivery import canonical  # noqa: E402
from tests.delivery.test_canonical_fast import HAZARDS, HTTP_RECORD, spec  # noqa: E402

_I64 = st.integers(-(2**63), 2**63 - 1)
_ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=16)  # every code point but lone surrogates
_LONE_SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
_EXACT = st.recursive(
    st.one_of(st.none(), st.booleans(), _I64, _ANY_TEXT),
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(_ANY_TEXT, inner, max_size=4),
    max_leaves=14)
_ODD = st.one_of(st.floats(), st.integers(2**63, 2**80), st.integers(-(2**80), -(2**63) - 1),
                 _LONE_SURROGATE.map(lambda c: f"a{c}b"), st.just(b"\x00"), st.just(frozenset({"x"})))


def _native(attrs: dict) -> bytes | None:
    whole = codec.canonical_record("HEAD", attrs)
    if whole is None:
        return None
    assert whole.startswith(b"HEAD") and whole.endswith(b"]")
    return whole[4:-1]


def test_canonical_parts_picks_the_native_encoder() -> None:
    assert canonical._native_record is codec.canonical_record


def test_the_usual_record_is_written_natively_and_equals_the_definition() -> None:
    attrs = {k: v for k, v in HTTP_RECORD.items() if type(v) is not float}
    assert _native(attrs) == spec(attrs)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_ANY_TEXT, _EXACT, max_size=12))
def test_exact_values_are_written_natively_as_the_definition_writes_them(attrs) -> None:
    """Every code point (escapes, DEL, astral pairs), every i64, nesting: natively, and the same bytes."""
    assert _native(attrs) == spec(attrs)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_ANY_TEXT, _EXACT, max_size=6), _ANY_TEXT, st.recursive(_ODD, lambda inner: st.lists(inner, min_size=1, max_size=3),
                                                                         max_leaves=3))
def test_anything_else_is_left_to_python_and_the_bytes_stay_the_definitions(attrs, key, odd) -> None:
    attrs[key] = odd
    assert _native(attrs) is None
    canonical_bytes, offset = canonical_parts("audit.x", 1, 9, "INFO", "", "", None, attrs)
    assert canonical_bytes[offset:-1] == spec({k: v for k, v in attrs.items() if k not in canonical.SEALED_KEYS})


@pytest.mark.parametrize("name", sorted(HAZARDS))
def test_what_orjson_gets_wrong_the_native_encoder_writes_right_or_leaves(name) -> None:
    attrs = {"audit.action": "request", "value": HAZARDS[name]}
    written = _native(attrs)
    if name in {"non-ASCII text", "non-ASCII key", "DEL"}:
        assert written == spec(attrs)
    else:
        assert written is None, name


class _Key(str):
    pass


@pytest.mark.parametrize("key", [1, None, ("a",), _Key("k")])
def test_a_key_that_is_not_exactly_str_is_left_to_python(key) -> None:
    assert _native({"a": 1, "nested": {key: 1}}) is None
    assert _native({key: 1}) is None


def test_nesting_deeper_than_the_native_limit_is_left_to_python() -> None:
    deep: list = []
    for _ in range(40):
        deep = [deep]
    assert _native({"deep": deep}) is None
    assert canonical_parts("audit.x", 1, 9, "INFO", "", "", None, {"deep": deep})[0].endswith(
        b"[" * 41 + b"]" * 41 + b"}]")


def test_without_the_native_encoder_the_bytes_are_the_same(monkeypatch) -> None:
    natively = canonical_parts("audit.http.request", 5, 9, "INFO", "", "", "body", HTTP_RECORD)
    monkeypatch.setattr(canonical, "_native_record", None)
    assert canonical_parts("audit.http.request", 5, 9, "INFO", "", "", "body", HTTP_RECORD) == natively
    monkeypatch.setattr(canonical, "_orjson_dumps", None)
    assert canonical_parts("audit.http.request", 5, 9, "INFO", "", "", "body", HTTP_RECORD) == natively


# -- the sealed record's frame (main thread) ---------------------------------------------------------

def test_the_sealer_picks_the_native_frame() -> None:
    from otel_audit.delivery import commit

    assert frames.chained_frame is codec.chained_frame
    assert commit.chained_frame is codec.chained_frame


@settings(max_examples=400, deadline=None)
@given(canonical=st.binary(max_size=2000), offset=st.integers(0, 2**40), observed=st.integers(0, 2**63 - 1),
       flags=st.integers(0, 255), seq=st.integers(1, 2**63 - 1),
       prev=st.one_of(st.just(""), st.binary(min_size=32, max_size=32).map(bytes.hex)),
       mac=st.binary(min_size=32, max_size=32).map(bytes.hex))
def test_the_native_frame_is_the_python_frame(canonical, offset, observed, flags, seq, prev, mac) -> None:
    native = codec.chained_frame(canonical, offset, observed, flags, seq, prev, mac)
    assert native == frames.chained_frame_py(canonical, offset, observed, flags, seq, prev, mac)
    assert spool.split_frames_py(native, 2) == ([native[8:]], len(native))
