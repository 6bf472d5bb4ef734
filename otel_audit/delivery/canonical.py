"""The canonical form of an audit record, shared by the sealer (spool) and ``otel-audit verify``.

The MAC has to survive the trip through exporters and a Collector. So it covers only what the
record itself says, as typed values, and it is computed from plain Python values that every
format we read back (the JSON-lines sink, OTLP JSON from the Collector's file exporter) turns into
the same values again:

    canonical = JSON([VERSION, event_name, time_unix_nano, severity_number, severity_text,
                      trace_id_hex, span_id_hex, body, attributes - SEALED_KEYS])
    sealed    = JSON([seq, prev, parents, forked_from])
    mac       = HMAC-SHA256(key, canonical + b"\\n" + sealed)      (SHA-256 without a key)

JSON here is ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True)``. The native
module (``_codec.canonical_record``, when built) writes the usual record's attributes object, and
orjson the records where its bytes are provably the same (see :func:`_attributes_json`); the
standard library does the rest, and the property tests hold all three to the same bytes. JSON keeps
the types apart that matter (``"5"`` vs ``5`` vs ``5.0`` vs ``true``); sequences become arrays
(tuple or list alike) and bytes become their lower-case hex string, which is also what the sink
writes. Excluded on purpose, because pipelines legitimately add or rewrite them: resource
attributes, instrumentation scope, observed timestamp, trace flags, dropped-attribute counts.
"""

from __future__ import annotations

import base64
import binascii
import json
from json.encoder import encode_basestring_ascii as _escape
from typing import Any, Iterator, Mapping

try:  # optional accelerator: same bytes, about a seventh of the instructions (docs/delivery.md)
    from orjson import OPT_SORT_KEYS as _SORT_KEYS
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - exercised by the fallback tests through monkeypatching
    _orjson_dumps = None
    _SORT_KEYS = 0

try:  # optional, built from otel_audit/delivery/_native: head + attributes + "]" in one call
    from otel_audit.delivery._codec import canonical_record as _native_record
except ImportError:  # pragma: no cover - a build without cargo; the tests monkeypatch it away too
    _native_record = None

VERSION = "otel-audit/chain/1"

CHAIN_ID = "audit.chain.id"
CHAIN_SEQ = "audit.chain.seq"
CHAIN_PREV = "audit.chain.prev"
CHAIN_MAC = "audit.chain.mac"
CHAIN_KEY_ID = "audit.chain.key_id"
CHAIN_ALG = "audit.chain.alg"
CHAIN_PARENT = "audit.chain.parent"
CHAIN_FORKED_FROM = "audit.chain.forked_from"
EVENT_ID = "audit.event_id"

#: Attributes set when the record is sealed in spool order; covered through ``sealed``, not ``canonical``.
SEALED_KEYS = frozenset({CHAIN_SEQ, CHAIN_PREV, CHAIN_MAC, CHAIN_PARENT, CHAIN_FORKED_FROM})


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_default)
_plain_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, default=_default)


def id_hex(value: Any, width: int) -> str:
    """Trace/span id as lower-case hex, "" when absent (int from the SDK, hex or base64 from files)."""
    if not value:
        return ""
    if isinstance(value, int):
        return f"{value:0{width}x}"
    text = str(value)
    if len(text) == width:
        try:
            int(text, 16)
            return text.lower()
        except ValueError:
            pass
    try:  # protobuf's own JSON mapping writes bytes fields as base64
        return base64.b64decode(text, validate=True).hex()
    except (binascii.Error, ValueError):
        return text


def canonical_bytes(
    event_name: str | None,
    time_unix_nano: int | None,
    severity_number: int | None,
    severity_text: str | None,
    trace_id: str,
    span_id: str,
    body: Any,
    attributes: Mapping[str, Any],
) -> bytes:
    """The record's own content; ``attributes`` may include sealed keys, they are left out here."""
    return canonical_parts(event_name, time_unix_nano, severity_number, severity_text, trace_id, span_id, body,
                           attributes)[0]


def canonical_parts(
    event_name: str | None,
    time_unix_nano: int | None,
    severity_number: int | None,
    severity_text: str | None,
    trace_id: str,
    span_id: str,
    body: Any,
    attributes: Mapping[str, Any],
) -> tuple[bytes, int]:
    """:func:`canonical_bytes` and the offset where its attributes object starts, so readers can
    take the attributes' JSON text without parsing it."""
    # A dict's keys view looks the five sealed keys up in the dict, not the record's ~30 keys in the set.
    attrs = attributes if attributes.keys().isdisjoint(SEALED_KEYS) else {k: v for k, v in attributes.items()
                                                                          if k not in SEALED_KEYS}
    # The head by hand (same bytes as encoding the list): one encoder call per record, not two; the
    # parts around the timestamp repeat from record to record (one per event name and severity).
    parts = _HEADS.get((event_name, severity_number, severity_text))
    if parts is None:
        parts = _head_parts(event_name, severity_number, severity_text)
    body_json = _escape(body) if type(body) is str else json_value(body)
    if trace_id or span_id:
        head = f"{parts[0]}{int(time_unix_nano or 0)}{parts[1]}{json_value(trace_id)},{json_value(span_id)},{body_json},"
    else:
        head = f'{parts[0]}{int(time_unix_nano or 0)}{parts[1]}"","",{body_json},'
    if _native_record is not None and type(attrs) is dict:
        whole = _native_record(head, attrs)
        if whole is not None:
            return whole, len(head)
    fast = _attributes_json(attrs) if _orjson_dumps is not None else None
    if fast is None:
        return f"{head}{_encoder.encode(attrs)}]".encode("ascii"), len(head)
    return b"".join((head.encode("ascii"), fast, b"]")), len(head)


_HEADS: dict[tuple[Any, Any, Any], tuple[str, str]] = {}


def _head_parts(event_name: str | None, severity_number: int | None, severity_text: str | None) -> tuple[str, str]:
    """The canonical head before and after the timestamp, for one event name and severity (bounded cache)."""
    parts = (f'["{VERSION}",{json_value(event_name or "")},',
             f',{int(severity_number) if severity_number is not None else "null"},{json_value(severity_text or "")},')
    if len(_HEADS) >= 256:  # event names are a vocabulary, but a caller could make up new ones
        _HEADS.clear()
    _HEADS[(event_name, severity_number, severity_text)] = parts
    return parts


#: Value types orjson writes exactly as the canonical encoder does (for ASCII text; checked after).
_SCALARS = frozenset({str, int, bool, type(None)})


def _attributes_json(attrs: Mapping[str, Any]) -> bytes | None:
    """The attributes object by orjson, or None where its bytes could differ from the encoder's.

    They differ only for: non-ASCII text (orjson writes UTF-8, not ``\\u`` escapes) and DEL
    (0x7F, escaped by ``ensure_ascii``), both seen in the output; floats whose ``repr`` orjson
    spells differently (``1e-05``, ``nan``); types orjson serialises natively but the encoder
    hands to ``_default`` (enums, dataclasses, datetimes); and what orjson refuses (ints beyond 64
    bits, non-string keys). The last is an exception; the others are ruled out by the type check.
    """
    if type(attrs) is not dict or not _SCALARS.issuperset(map(type, attrs.values())):
        if not (type(attrs) is dict and all(map(_is_plain_json, attrs.values()))):
            return None
    try:
        out = _orjson_dumps(attrs, option=_SORT_KEYS)
    except Exception:  # noqa: BLE001 - e.g. an int beyond 64 bits: the encoder handles it
        return None
    if not out.isascii() or b"\x7f" in out:
        return None
    return out


def _is_plain_json(value: Any) -> bool:
    """True when orjson and the canonical encoder agree on ``value`` (a container is checked deeply)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is list or kind is tuple:
        return all(map(_is_plain_json, value))
    if kind is dict:
        return all(type(key) is str for key in value) and all(map(_is_plain_json, value.values()))
    if kind is float:
        return _orjson_dumps(value) == float.__repr__(value).encode("ascii")
    return False


def json_value(value: Any) -> str:
    """One canonical JSON value; the head's usual types without the encoder (which builds a new
    C encoder object per call: ~10k instructions even for ``None``). Also the sink's encoding of
    values read back from canonical bytes (their dicts already in sorted order)."""
    kind = type(value)
    if kind is str:
        return _escape(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    return _encoder.encode(value)


def json_text(value: Any) -> str:
    """Compact JSON (keys in their given order), with the canonical form's fallbacks for odd types."""
    return _plain_encoder.encode(value)


def sealed_bytes(seq: int, prev: str, parents: Any = None, forked_from: Any = None) -> bytes:
    if not parents and not forked_from and (not prev or (prev.isascii() and prev.isalnum())):  # common: same bytes
        return f'[{int(seq)},"{prev}",null,null]'.encode("ascii")
    return _plain_encoder.encode([int(seq), prev or "", list(parents) if parents else None, forked_from or None]).encode(
        "ascii"
    )


def mac_input(canonical: bytes, seq: int, prev: str, parents: Any = None, forked_from: Any = None) -> bytes:
    return canonical + b"\n" + sealed_bytes(seq, prev, parents, forked_from)


# ---------------------------------------------------------------------------------------------
# Reading exported records back (for verify)


class ExportedRecord:
    """One record read back from an exported file, reduced to what the chain covers."""

    __slots__ = ("source", "line", "event_name", "time_unix_nano", "severity_number", "severity_text", "trace_id",
                 "span_id", "body", "attributes")

    def __init__(self, source: str, line: int, event_name: str | None, time_unix_nano: int | None,
                 severity_number: int | None, severity_text: str | None, trace_id: str, span_id: str, body: Any,
                 attributes: dict[str, Any]) -> None:
        self.source = source
        self.line = line
        self.event_name = event_name
        self.time_unix_nano = time_unix_nano
        self.severity_number = severity_number
        self.severity_text = severity_text
        self.trace_id = trace_id
        self.span_id = span_id
        self.body = body
        self.attributes = attributes

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def canonical(self) -> bytes:
        return canonical_bytes(self.event_name, self.time_unix_nano, self.severity_number, self.severity_text,
                               self.trace_id, self.span_id, self.body, self.attributes)


def _any_value(value: Mapping[str, Any]) -> Any:
    """OTLP JSON AnyValue -> Python value (ints arrive as strings, bytes as base64)."""
    if not value:
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        raw = value["doubleValue"]
        return float(raw) if not isinstance(raw, str) else float(raw)
    if "bytesValue" in value:
        return base64.b64decode(value["bytesValue"]).hex()
    if "arrayValue" in value:
        return [_any_value(v) for v in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return {kv["key"]: _any_value(kv.get("value") or {}) for kv in (value["kvlistValue"] or {}).get("values", [])}
    return None


def _severity(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber as PbSeverity

    return int(PbSeverity.Value(str(value)))


def _from_sink(obj: Mapping[str, Any], source: str, line: int) -> ExportedRecord:
    return ExportedRecord(
        source, line, obj.get("event_name"), obj.get("time_unix_nano"), obj.get("severity_number"),
        obj.get("severity_text"), id_hex(obj.get("trace_id"), 32), id_hex(obj.get("span_id"), 16), obj.get("body"),
        dict(obj.get("attributes") or {}),
    )


def _from_otlp(obj: Mapping[str, Any], source: str, line: int) -> Iterator[ExportedRecord]:
    for resource_logs in obj.get("resourceLogs") or obj.get("resource_logs") or []:
        for scope_logs in resource_logs.get("scopeLogs") or resource_logs.get("scope_logs") or []:
            for rec in scope_logs.get("logRecords") or scope_logs.get("log_records") or []:
                attrs = {kv["key"]: _any_value(kv.get("value") or {}) for kv in rec.get("attributes") or []}
                ts = rec.get("timeUnixNano", rec.get("time_unix_nano"))
                yield ExportedRecord(
                    source, line, rec.get("eventName", rec.get("event_name")), int(ts) if ts is not None else None,
                    _severity(rec.get("severityNumber", rec.get("severity_number"))),
                    rec.get("severityText", rec.get("severity_text")), id_hex(rec.get("traceId"), 32),
                    id_hex(rec.get("spanId"), 16), _any_value(rec.get("body") or {}), attrs,
                )


def read_exported(path: str) -> Iterator[ExportedRecord]:
    """Records from a sink JSON-lines file or an OTLP JSON file (one ExportLogsServiceRequest per line).

    Raises ``ValueError`` naming the file and line when a line is neither.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object")
            if "resourceLogs" in obj or "resource_logs" in obj:
                yield from _from_otlp(obj, path, number)
            elif "event_name" in obj or "attributes" in obj:
                yield _from_sink(obj, path, number)
            else:
                raise ValueError(f"{path}:{number}: neither an otel-audit sink record nor OTLP JSON")
