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
