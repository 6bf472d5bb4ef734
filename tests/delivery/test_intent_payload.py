"""An intent frame's payload reads back as the values it was given, whichever encoder wrote it
(orjson for plain scalars, the standard encoder for the rest), and an adopter finds it."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from otel_audit.delivery import intents

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.text())
VALUES = st.one_of(SCALARS, st.floats(), st.lists(st.text(), max_size=3))
ATTRIBUTES = st.dictionaries(st.text(min_size=1, max_size=20), VALUES, max_size=12)


def _read_back(payload: bytes) -> dict:
    is_intent, body = intents._marker(payload)  # noqa: SLF001 - the reader the exporter and adopter use
    assert is_intent
    return body


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(ATTRIBUTES, st.integers(min_value=0, max_value=2**63 - 1))
def test_an_intent_reads_back_as_its_values(attributes, when) -> None:
    payload = intents.intent_payload("0192-intent", when, 4242, attributes)
    body = _read_back(payload)
    assert body["id"] == "0192-intent" and body["t"] == when and body["pid"] == 4242
    assert _same(attributes, body["a"]), (attributes, body["a"])
    found = intents.unresolved([payload])
    assert [(i.event_id, i.time_unix_nano, i.pid) for i in found] == [("0192-intent", when, 4242)]


def test_values_orjson_would_change_take_the_standard_encoder() -> None:
    odd = {"nan": float("nan"), "big": 2**70, "text": "caf\u00e9"}
    body = _read_back(intents.intent_payload("e", 1, 2, odd))
    assert math.isnan(body["a"]["nan"]) and body["a"]["big"] == 2**70 and body["a"]["text"] == "caf\u00e9"
    plain = {"enduser.id": "u-7", "audit.redaction.count": 0, "user.name": "J\u00fcrgen"}
    payload = intents.intent_payload("e", 1, 2, plain)
    assert json.loads(payload[2:]) == {"id": "e", "t": 1, "pid": 2, "a": plain}
