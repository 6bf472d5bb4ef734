"""What one spooled record looks like, and the two ways the exporter thread reads it back.

A frame's payload (see :mod:`otel_audit.delivery.spool` for the frame around it) is::

    canonical  0x1E  trailer

``canonical`` is the record's canonical JSON (:mod:`otel_audit.delivery.canonical`), exactly the
bytes the chain MAC covers; its attributes object is the last element and starts at
``attrs_offset``. ``trailer`` is ``[observed, flags, seq, prev, mac, parents, forked_from,
attrs_offset]`` (frames written before the offset existed have seven elements).

Reading back:

* :func:`decode_record` - into the SDK record the standard exporters (OTLP, console) take.
* :func:`sink_line` - straight into the embedded sink's JSON line, splicing the attributes' JSON
  text instead of parsing and re-encoding it (the sink's cost per record was mostly that); the
  common payload natively where ``otel_audit/delivery/_native`` is built, the same bytes either way.
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring_ascii as _escape
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import TraceFlags

from otel_audit._logs_compat import LogRecord, ReadableLogRecord, SeverityNumber
from otel_audit.delivery.spool import encode_frame
from otel_audit.delivery.canonical import (
    CHAIN_FORKED_FROM,
    CHAIN_MAC,
    CHAIN_PARENT,
    CHAIN_PREV,
    CHAIN_SEQ,
    json_text,
    json_value,
)

SEPARATOR = b"\x1e"  # never appears in canonical JSON (ensure_ascii escapes control characters)
_loads = json.loads
_parse = json.JSONDecoder().raw_decode


def payload(canonical: bytes, attrs_offset: int, observed: int, flags: int, seq: int, prev: str, mac: str,
            parents: list[str] | None, forked_from: str | None) -> bytes:
    """The payload for a sealed record."""
    if parents is None and forked_from is None and (not prev or (prev.isascii() and prev.isalnum())):  # no encoder
        trailer = f'[{int(observed)},{int(flags)},{seq},"{prev}","{mac}",null,null,{attrs_offset}]'
    else:
        trailer = json_text([observed, flags, seq, prev, mac, parents, forked_from, attrs_offset])
    return canonical + SEPARATOR + trailer.encode("ascii")


def chained_payload(canonical: bytes, attrs_offset: int, observed: int, flags: int, seq: int, prev: str,
                    mac: str) -> bytes:
    """:func:`payload` for the sealer's common record (no parents, no fork link): ``prev`` and ``mac``
    are the chain's own hex digests (``prev`` "" at its start), so the trailer needs no checks."""
    return b"".join((canonical, SEPARATOR, f'[{observed},{flags},{seq},"{prev}","{mac}",null,null,{attrs_offset}]'
                     .encode("ascii")))


def chained_frame_py(canonical: bytes, attrs_offset: int, observed: int, flags: int, seq: int, prev: str,
                     mac: str) -> bytes:
    """The whole spool frame (header and :func:`chained_payload`) of the sealer's common record."""
    return encode_frame(chained_payload(canonical, attrs_offset, observed, flags, seq, prev, mac))


try:  # the same bytes in one buffer, CRC included (otel_audit/delivery/_native)
    from otel_audit.delivery._codec import chained_frame
except ImportError:  # pragma: no cover - a build without cargo
    chained_frame = chained_frame_py


def trailer(data: bytes) -> list[Any]:
    """The trailer of a payload: ``[observed, flags, seq, prev, mac, parents, forked_from(, offset)]``."""
    return _loads(data.partition(SEPARATOR)[2])


def _chain_attributes(seq: int, prev: str, mac: str, parents: Any, forked_from: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {CHAIN_SEQ: seq, CHAIN_PREV: prev, CHAIN_MAC: mac}
    if parents:
        attrs[CHAIN_PARENT] = parents
    if forked_from:
        attrs[CHAIN_FORKED_FROM] = forked_from
    return attrs


def decode_record(data: bytes, resource: Resource, scope: InstrumentationScope) -> ReadableLogRecord:
    """A payload back into the SDK record the standard exporters take (resource and scope kept)."""
    canonical, _, tail = data.partition(SEPARATOR)
    _version, event_name, ts, severity, severity_text, trace_hex, span_hex, body, attrs = _loads(canonical)
    observed, flags, seq, prev, mac, parents, forked_from = _loads(tail)[:7]
    attrs.update(_chain_attributes(seq, prev, mac, parents, forked_from))
    record = LogRecord(
        timestamp=ts,
        observed_timestamp=observed,
        trace_id=int(trace_hex, 16) if trace_hex else 0,
        span_id=int(span_hex, 16) if span_hex else 0,
        trace_flags=TraceFlags(flags),
        severity_text=severity_text or None,
        severity_number=SeverityNumber(severity) if severity is not None else None,
        body=body,
        attributes=attrs,
        event_name=event_name or None,
    )
    return ReadableLogRecord(log_record=record, resource=resource, instrumentation_scope=scope)


def _fields(tail: bytes) -> list[Any]:
    """The trailer's values; the common shape (no parents, not forked) without the JSON parser."""
    parts = tail[1:-1].split(b",")
    if b"\\" not in tail and len(parts) == 8 and parts[5] == b"null" and parts[6] == b"null" and parts[3][:1] == b'"':
        return [int(parts[0]), int(parts[1]), int(parts[2]), parts[3][1:-1].decode("ascii"),
                parts[4][1:-1].decode("ascii"), None, None, int(parts[7])]
    return _loads(tail)


# The canonical head, token by token: ["otel-audit/chain/1",event_name,ts,severity,severity_text,
# "trace","span",  (the body follows, up to the attributes offset). Strings are ensure_ascii JSON.
# (Strings with escapes do not match: those frames take the parsing path.)
_HEAD = re.compile(rb'\["otel-audit/chain/1",("[^"\\]*"),(\d+),(null|-?\d+),("[^"\\]*"),"([0-9a-f]*)","([0-9a-f]*)",')
_CHAIN_SEQ_KEY = f'"{CHAIN_SEQ}":'.encode()
_CHAIN_PREV_KEY = f',"{CHAIN_PREV}":'.encode()
_CHAIN_MAC_KEY = f',"{CHAIN_MAC}":'.encode()


def sink_line_py(data: bytes, scope_and_resource: bytes) -> bytes:
    """A payload as the sink's JSON line (same bytes as encoding the decoded record).

    ``scope_and_resource`` is the pre-encoded ``,"scope":{..},"resource":{..}`` tail, shared by
    every record of one spool. The common frame is spliced token by token, nothing parsed: the
    canonical form already writes every value as the sink does (compact, sorted, ASCII), except
    that the sink writes an empty event name or severity text as ``null``.
    """
    canonical, _, tail = data.partition(SEPARATOR)
    parts = tail[1:-1].split(b",")
    head = _HEAD.match(canonical)
    if (head is None or len(parts) != 8 or parts[5] != b"null" or parts[6] != b"null" or b"\\" in tail
            or parts[3][:1] != b'"'):
        return _sink_line_parsed(canonical, tail, scope_and_resource)
    observed, flags, seq, prev, mac, _parents, _forked, offset = parts
    offset = int(offset)
    event_name, ts, severity, severity_text, trace_hex, span_hex = head.groups()
    attrs_json = canonical[offset:-1]
    return b"".join((
        b'{"time_unix_nano":', ts, b',"observed_time_unix_nano":', observed,
        b',"event_name":', event_name if event_name != b'""' else b"null", b',"severity_number":', severity,
        b',"severity_text":', severity_text if severity_text != b'""' else b"null",
        b',"body":', canonical[head.end():offset - 1], b',"attributes":',
        attrs_json[:-1], b"," if attrs_json != b"{}" else b"", _CHAIN_SEQ_KEY, seq, _CHAIN_PREV_KEY, prev,
        _CHAIN_MAC_KEY, mac, b'},"trace_id":"', trace_hex, b'","span_id":"', span_hex, b'","trace_flags":', flags,
        scope_and_resource, b"}\n"))


try:  # the common payload spliced in Rust (otel_audit/delivery/_native); None: any other payload
    from otel_audit.delivery._codec import sink_line as _native_sink_line
except ImportError:  # not built (no cargo at install)
    _native_sink_line = None

if _native_sink_line is None:
    sink_line = sink_line_py
else:
    def sink_line(data: bytes, scope_and_resource: bytes) -> bytes:
        """:func:`sink_line_py`, the common payload natively (same bytes; the others in Python)."""
        return _native_sink_line(data, scope_and_resource) or sink_line_py(data, scope_and_resource)


def _sink_line_parsed(canonical: bytes, tail: bytes, scope_and_resource: bytes) -> bytes:
    """:func:`sink_line` for the uncommon frames (forks, parents, frames from before the offset)."""
    fields = _fields(tail)
    if len(fields) < 8:  # a frame from before the offset was recorded: take the slow path
        _version, *head, attrs = _loads(canonical)
        attrs_json = json_text(attrs).encode("ascii")
    else:
        offset = fields[7]
        head = _parse(canonical[:offset - 1].decode("ascii") + "]")[0][1:]
        attrs_json = canonical[offset:-1]
    event_name, ts, severity, severity_text, trace_hex, span_hex, body = head
    observed, flags, seq, prev, mac, parents, forked_from = fields[:7]
    if parents or forked_from:
        chain = json_text(_chain_attributes(seq, prev, mac, parents, forked_from))[1:]
    else:
        chain = f'"{CHAIN_SEQ}":{seq},"{CHAIN_PREV}":{_string(prev)},"{CHAIN_MAC}":{_string(mac)}}}'
    attributes = attrs_json[:-1] + (b"," if attrs_json != b"{}" else b"") + chain.encode("ascii")
    front = (f'{{"time_unix_nano":{ts},"observed_time_unix_nano":{observed},'
             f'"event_name":{_string(event_name or None)},"severity_number":{json_value(severity)},'
             f'"severity_text":{_string(severity_text or None)},"body":{json_value(body)},"attributes":')
    back = f',"trace_id":"{trace_hex}","span_id":"{span_hex}","trace_flags":{int(flags)}'
    return b"".join((front.encode("ascii"), attributes, back.encode("ascii"), scope_and_resource, b"}\n"))


def _string(value: str | None) -> str:
    return "null" if value is None else _escape(value)
