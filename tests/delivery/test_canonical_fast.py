"""orjson writes the canonical attributes object only where its bytes equal the standard encoder's.

The chain MAC covers these bytes and ``otel-audit verify`` recomputes them, possibly on a machine
without orjson; one differing byte would read as tampering. So every value kind where the two
libraries disagree must take the standard library's path, and everything else must take orjson's
(or the speed-up silently disappears).
"""

from __future__ import annotations

import datetime
import enum
import json
import math
import uuid
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_audit.delivery import canonical
from otel_audit.delivery.canonical import canonical_parts


def spec(attrs: dict) -> bytes:
    """The definition: sorted, compact, ASCII JSON with the canonical fallbacks for odd types."""
    return json.dumps(attrs, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      default=canonical._default).encode("ascii")


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


@dataclass
class Point:
    x: int


HTTP_RECORD = {
    "audit.action": "request", "audit.actor.type": "anonymous", "audit.category": "http",
    "audit.chain.alg": "sha256", "audit.chain.id": "d43f93201d5242da88c0efb4266fdb8c", "audit.level": "metadata",
    "audit.outcome": "success", "audit.redaction.count": 0, "client.port": 43690, "http.route": "/",
    "http.response.status_code": 200, "audit.redaction.fields": ["http.request.header.cookie"],
    "server.duration_ms": 1.25, "audit.sampled": True, "user.id": None,
}

# Each of these differs between orjson and the standard encoder, or is refused by orjson.
HAZARDS = {
    "non-ASCII text": "Zoë",
    "non-ASCII key": {"ключ": 1},
    "DEL": "a\x7fb",
    "small float": 1e-05,
    "NaN": math.nan,
    "infinity": -math.inf,
    "int beyond 64 bits": 2**70,
    "enum": Colour.RED,
    "int enum": Level.HIGH,
    "str subclass": Name("x"),
    "datetime": datetime.datetime(2026, 11, 26, 12, 0, 0),
    "dataclass": Point(1),
    "uuid": uuid.UUID(int=7),
    "bytes": b"\x00\xff",
    "set": {"b", "a"},
    "non-string key": {1: "one"},
    "nested NaN": [{"x": [math.nan]}],
}


def test_a_typical_record_takes_the_orjson_path_and_matches_the_definition() -> None:
    assert canonical._orjson_dumps is not None, "orjson is a dependency on CPython: the fast path must be available"
    fast = canonical._attributes_json(HTTP_RECORD)
    assert fast is not None
    assert fast == spec(HTTP_RECORD)


@pytest.mark.parametrize("name", sorted(HAZARDS))
def test_values_orjson_would_write_differently_take_the_standard_path(name) -> None:
    attrs = {"audit.action": "request", "value": HAZARDS[name]}
    assert canonical._attributes_json(attrs) is None, name
    canonical_bytes, offset = canonical_parts("audit.x", 1, 9, "INFO", "", "", None, attrs)
    assert canonical_bytes[offset:-1] == spec(attrs)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(
    st.text(max_size=12),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(-(2**80), 2**80), st.floats(), st.text(max_size=20),
                  st.characters(min_codepoint=0, max_codepoint=0x80).map(str)),
        lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=10),
    max_size=10))
def test_canonical_attributes_equal_the_definition_whichever_library_writes_them(attrs) -> None:
    canonical_bytes, offset = canonical_parts("audit.x", 1, 9, "INFO", "ab" * 16, "cd" * 8, "body", attrs)
    assert canonical_bytes[offset:-1] == spec(attrs)


def test_without_orjson_the_bytes_are_the_same(monkeypatch) -> None:
    with_orjson = canonical_parts("audit.http.request", 5, 9, "INFO", "", "", None, HTTP_RECORD)
    monkeypatch.setattr(canonical, "_orjson_dumps", None)
    assert canonical_parts("audit.http.request", 5, 9, "INFO", "", "", None, HTTP_RECORD) == with_orjson


@pytest.mark.parametrize("body", [None, 0, -7, 2**70, True, False, 1.5, math.nan, "text", ["a", 1], {"k": "v"}])
def test_head_values_written_inline_match_the_encoder(body) -> None:
    head_and_attrs, offset = canonical_parts("audit.x", 1, None, "", "", "", body, {})
    expected = json.dumps(["otel-audit/chain/1", "audit.x", 1, None, "", "", "", body, {}], sort_keys=True,
                          separators=(",", ":"), ensure_ascii=True).encode("ascii")
    assert head_and_attrs == expected


_TEXT = st.text(st.characters(codec="utf-8"), max_size=20)


@settings(max_examples=300, deadline=None)
@given(event_name=st.one_of(st.none(), _TEXT), ts=st.integers(0, 2**63), severity=st.one_of(st.none(), st.integers(0, 24)),
       severity_text=st.one_of(st.none(), _TEXT), trace=st.sampled_from(["", "0af7651916cd43dd8448eb211c80319c"]),
       span=st.sampled_from(["", "b7ad6b7169203331"]), body=st.one_of(st.none(), _TEXT, st.integers()))
def test_the_head_from_its_cached_parts_matches_the_encoder(event_name, ts, severity, severity_text, trace, span,
                                                            body) -> None:
    """The parts around the timestamp are cached per event name and severity: every combination,
    asked twice (the second answer comes from the cache), is the encoder's bytes."""
    expected = json.dumps(["otel-audit/chain/1", event_name or "", ts, severity, severity_text or "", trace, span, body,
                           {}], sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    for _ in range(2):
        assert canonical_parts(event_name, ts, severity, severity_text, trace, span, body, {})[0] == expected


@settings(max_examples=200, deadline=None)
@given(seq=st.integers(1, 2**40), observed=st.integers(0, 2**63), flags=st.integers(0, 255),
       prev=st.one_of(st.just(""), st.binary(min_size=32, max_size=32).map(bytes.hex)),
       mac=st.binary(min_size=32, max_size=32).map(bytes.hex), offset=st.integers(0, 5000))
def test_the_sealers_unchecked_trailer_and_sealed_bytes_equal_the_checked_ones(seq, observed, flags, prev, mac,
                                                                               offset) -> None:
    """The sealer's common record skips the checks that make any ``prev`` safe to splice: its own
    chain's values are hex digests (or "" at the start), for which the bytes must be the same."""
    from otel_audit.delivery import frames
    from otel_audit.delivery.chain import ChainKey, ChainState

    canonical_bytes = b'["otel-audit/chain/1","audit.x",1,9,"INFO","","",null,{}]'
    assert (frames.chained_payload(canonical_bytes, offset, observed, flags, seq, prev, mac)
            == frames.payload(canonical_bytes, offset, observed, flags, seq, prev, mac, None, None))
    for key in (ChainKey("none", None), ChainKey("k1", b"secret")):
        chain = ChainState(seq=seq - 1, prev=prev)
        sealed_seq, sealed_prev, sealed_mac, parents, forked = chain.seal(key, canonical_bytes)
        expected = key.mac(canonical.mac_input(canonical_bytes, seq, prev))
        assert (sealed_seq, sealed_prev, sealed_mac, parents, forked) == (seq, prev, expected, None, None)
