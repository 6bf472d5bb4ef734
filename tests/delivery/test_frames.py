"""Spooled frames read back two ways - into SDK records and straight into sink lines - agree.

The sink's fast path splices the attributes' JSON text out of the spooled canonical bytes instead
of parsing and re-encoding it; these tests hold it to the slow path's output byte for byte, and
check that frames written before the attributes offset existed still read back.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_audit.delivery import frames
from otel_audit.delivery.canonical import SEALED_KEYS, canonical_bytes, canonical_parts
from otel_audit.delivery.verify import verify_files
from otel_audit.delivery.sink import JsonLinesExporter, encode_line

RESOURCE = Resource({"service.name": "shop", "deployment.environment": "test", "n": 3})
SCOPE = InstrumentationScope("otel_audit", "0.1.0")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
attributes = st.dictionaries(st.text(min_size=1, max_size=20), values, max_size=12)
texts = st.text(max_size=40)


@settings(max_examples=300, deadline=None)
@given(event_name=texts, ts=st.integers(0, 2**63 - 1), severity=st.one_of(st.none(), st.integers(1, 24)),
       severity_text=texts, body=values, attrs=attributes,
       parents=st.one_of(st.none(), st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=3)),
       forked_from=st.one_of(st.none(), st.text(min_size=1, max_size=12)), prev=st.text(max_size=10))
def test_sink_lines_from_spooled_bytes_equal_the_decoded_records_lines(tmp_path_factory, event_name, ts, severity,
                                                                      severity_text, body, attrs, parents,
                                                                      forked_from, prev) -> None:
    canonical, offset = canonical_parts(event_name, ts, severity, severity_text, "ab" * 16, "cd" * 8, body, attrs)
    # the canonical form is, by definition, sorted compact ASCII JSON of this list (see canonical.py),
    # sealed keys left out (hypothesis draws them: it seeds text with the code's own string constants)
    own = {key: value for key, value in attrs.items() if key not in SEALED_KEYS}
    spec = json.dumps(["otel-audit/chain/1", event_name, ts, severity, severity_text, "ab" * 16, "cd" * 8, body, own],
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    assert canonical == spec == canonical_bytes(event_name, ts, severity, severity_text, "ab" * 16, "cd" * 8, body,
                                                attrs)
    assert canonical[offset:-1] == json.dumps(own, sort_keys=True, separators=(",", ":")).encode("ascii")
    payload = frames.payload(canonical, offset, 17, 1, 9, prev, "ee" * 32, parents, forked_from)
    exporter = JsonLinesExporter(tmp_path_factory.mktemp("sink") / "audit.jsonl")
    try:
        fast = exporter.spooled_codec(payload, RESOURCE, SCOPE)
        slow = encode_line(frames.decode_record(payload, RESOURCE, SCOPE))
    finally:
        exporter.shutdown()
    assert fast == slow
    line = json.loads(fast)
    assert line["attributes"]["audit.chain.seq"] == 9 and line["resource"]["service.name"] == "shop"


def test_frames_without_an_attributes_offset_still_read_back(tmp_path) -> None:
    """Spools written by an earlier version (seven-element trailer) are adopted and exported too."""
    canonical, offset = canonical_parts("audit.http.request", 5, 9, "INFO", "", "", "hi", {"a": 1, "b": "x"})
    new = frames.payload(canonical, offset, 17, 0, 1, "", "ff" * 32, None, None)
    old = canonical + frames.SEPARATOR + b'[17,0,1,"","' + b"ff" * 32 + b'",null,null]'
    exporter = JsonLinesExporter(tmp_path / "audit.jsonl")
    try:
        assert exporter.spooled_codec(old, RESOURCE, SCOPE) == exporter.spooled_codec(new, RESOURCE, SCOPE)
    finally:
        exporter.shutdown()
    assert frames.decode_record(old, RESOURCE, SCOPE).log_record.attributes == \
        frames.decode_record(new, RESOURCE, SCOPE).log_record.attributes


def test_a_sink_written_through_the_fast_path_verifies(delivery) -> None:
    """End to end: records spooled, exported as spliced lines, and the chain still verifies."""
    import otel_audit
    from otel_audit import runtime

    delivery.start(OTEL_AUDIT_CHAIN_KEY="k" * 32)
    for n in range(50):
        otel_audit.record("data_modification", "update", attributes={"n": n, "note": "ü ] , {"})
    runtime.flush()
    report = verify_files([str(delivery.sink)], {"default": b"k" * 32})
    assert report.ok, report
    assert report.records >= 50


def test_a_typical_frame_is_spliced_without_parsing(monkeypatch, tmp_path) -> None:
    attrs = {"audit.action": "request", "http.response.status_code": 200, "user.roles": ["admin"]}
    canonical, offset = canonical_parts("audit.http.request", 5, 9, "INFO", "ab" * 16, "cd" * 8, "GET / 200", attrs)
    payload = frames.payload(canonical, offset, 17, 1, 9, "ee" * 32, "ff" * 32, None, None)
    exporter = JsonLinesExporter(tmp_path / "audit.jsonl")
    try:
        slow = encode_line(frames.decode_record(payload, RESOURCE, SCOPE))

        def parse_instead(*args):
            raise AssertionError("the common frame must not be parsed")

        monkeypatch.setattr(frames, "_sink_line_parsed", parse_instead)
        assert exporter.spooled_codec(payload, RESOURCE, SCOPE) == slow
    finally:
        exporter.shutdown()


def test_split_frames_takes_intact_frames_and_stops_at_a_torn_or_corrupt_one() -> None:
    from otel_audit.delivery.spool import encode_frame, iter_frames, split_frames

    frames_ = [encode_frame(b"payload-%d" % i) for i in range(5)]
    data = b"".join(frames_)
    assert split_frames(data, 100) == ([b"payload-%d" % i for i in range(5)], len(data))
    assert split_frames(data, 2) == ([b"payload-0", b"payload-1"], len(frames_[0]) + len(frames_[1]))
    torn = data + frames_[0][:-3]  # a crash mid-write
    assert split_frames(torn, 100) == split_frames(data, 100)
    corrupt = bytearray(data)
    corrupt[len(frames_[0]) + len(frames_[1]) + 9] ^= 0xFF  # a flipped byte in the third payload
    payloads, end = split_frames(bytes(corrupt), 100)
    assert payloads == [b"payload-0", b"payload-1"] and end == len(frames_[0]) + len(frames_[1])
    assert [p for p, _ in iter_frames(bytes(corrupt))] == payloads  # the same frames as the generator
