"""Intent frames: the evidence of a request's database change before its one record is written.

An HTTP request's audit record is written once, at response time, with the database changes made
inside it folded in. A ``kill -9`` between the commit and the response would lose the evidence of a
committed change, so the request's first data-changing statement appends a small **intent** frame
to the spool (event id, time, what was known: actor, route, table, operation). Then one of:

* the final record (same ``audit.event_id``) is appended: it supersedes the intent;
* the policy decided no record: a **resolve** marker frame is appended;
* the process dies: whoever adopts the spool reports the intent as its own record,
  ``audit.outcome=unknown``, ``audit.outcome.reason=interrupted``.

Intent and resolve frames are never exported and are not chained (they are not records). Their
payload starts with ``0x1D``; a record's canonical JSON always starts with ``[``.

Two readers:

* :class:`OpenIntents` - the live exporter's view of its own spool: it drops the frames from the
  batches it exports and remembers where each still-open intent was read, so the persisted ack
  cursor (and segment deletion) never passes one (see ``ProcessSpool.ack``'s ``hold``).
* :func:`unresolved` - at adoption: every intent of a dead process's spool without a final record
  or resolve marker.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _escape
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Iterable

from otel_audit.delivery import spool as spool_mod
from otel_audit.delivery.canonical import _SCALARS, json_text

try:
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - orjson is a dependency; the standard encoder writes the same values
    _orjson_dumps = None

MARK = spool_mod.MARKER
_MARK_BYTE = MARK[0]
_first_byte = itemgetter(0)  # payloads are never empty
_INTENT = MARK + b"I"
_RESOLVE = MARK + b"R"
_EVENT_ID_KEY = b'"audit.event_id":"'


@dataclass(frozen=True)
class Intent:
    """One noted intent as read back from a spool."""

    event_id: str
    time_unix_nano: int
    pid: int | None
    attributes: dict[str, Any]


def intent_payload(event_id: str, time_unix_nano: int, pid: int, attributes: dict[str, Any]) -> bytes:
    """The frame payload of an intent (typed JSON). Not chained, so any JSON that reads back as the
    same values will do: orjson's (UTF-8) where every value is a plain scalar (it writes NaN as
    null, and refuses ints beyond 64 bits: those take the standard encoder, as before)."""
    body = {"id": str(event_id), "t": int(time_unix_nano), "pid": int(pid), "a": attributes}
    if _orjson_dumps is not None and type(attributes) is dict and _SCALARS.issuperset(map(type, attributes.values())):
        try:
            return _INTENT + _orjson_dumps(body)
        except Exception:  # noqa: BLE001 - a key that is not a string, an int beyond 64 bits
            pass
    return _INTENT + json_text(body).encode("ascii")


def resolve_payload(event_id: str) -> bytes:
    """The frame payload that resolves an intent without a record (or marks it reported)."""
    return _RESOLVE + _escape(str(event_id)).encode("ascii")  # one JSON string, as json_text writes it


def is_marker(payload: bytes) -> bool:
    """An intent or resolve frame (not a record)."""
    return payload[:1] == MARK


def _marker(payload: bytes) -> tuple[bool, Any]:
    """(is an intent, its parsed body) of a marker payload."""
    return payload[:2] == _INTENT, json.loads(payload[2:])


def record_event_id(payload: bytes) -> str | None:
    """``audit.event_id`` of a record payload, read from its canonical bytes without parsing them.

    The canonical JSON is ``ensure_ascii`` with escaped quotes, so the key's literal text can only
    be a real key; UUIDv7 ids contain no escapes.
    """
    start = payload.find(_EVENT_ID_KEY)
    if start < 0:
        return None
    start += len(_EVENT_ID_KEY)
    end = payload.find(b'"', start)
    return payload[start:end].decode("ascii", "replace") if end > 0 else None


class OpenIntents:
    """The exporter's open intents of its own spool: event id -> position of the batch it was read in.

    Only the exporter thread uses it. Batch granularity (not the frame's own offset) keeps the
    reader unchanged; the price is that records of that batch before the intent are sent again
    after a crash (at-least-once, deduplicated on ``audit.event_id``).
    """

    def __init__(self) -> None:
        self.open: dict[str, tuple[int, int]] = {}

    def sift(self, payloads: list[bytes], batch_start: tuple[int, int]) -> list[bytes]:
        """The record payloads of a batch; intent and resolve frames update :attr:`open`."""
        if not self.open and _MARK_BYTE not in map(_first_byte, payloads):
            return payloads  # the common case, ~20 ns a record: no intent anywhere near
        records = []
        for payload in payloads:
            if payload[:1] == MARK:
                try:
                    intent, body = _marker(payload)
                except ValueError:
                    continue  # an intact frame cannot be malformed; nothing to hold for
                if intent:
                    self.open[body["id"]] = batch_start
                else:
                    self.open.pop(body, None)
                continue
            records.append(payload)
            if self.open:
                event_id = record_event_id(payload)
                if event_id is not None:
                    self.open.pop(event_id, None)
        return records

    def hold(self) -> tuple[int, int] | None:
        """The position the persisted ack cursor must not pass (the oldest open intent's batch)."""
        return min(self.open.values()) if self.open else None

    def release_oldest(self) -> None:
        """Stop holding for the oldest open intent (it held too much of the spool, see HoldReleased)."""
        oldest = self.hold()
        self.open = {event_id: at for event_id, at in self.open.items() if at != oldest}


class HoldReleased(Exception):
    """An open intent held more than a quarter of ``OTEL_AUDIT_SPOOL_MAX_BYTES`` (its request never
    ended with a record or ``resolve_intent``); the exporter stopped holding the spool for it, so a
    crash from now on would lose it. Counted in ``containment`` (``intent hold``), never raised."""


def drop_markers(payloads: list[bytes]) -> list[bytes]:
    """A batch of an adopted spool without its intent and resolve frames (they were reported)."""
    if _MARK_BYTE not in map(_first_byte, payloads):
        return payloads
    return [p for p in payloads if p[:1] != MARK]


def unresolved(frames: Iterable[bytes]) -> list[Intent]:
    """Intents without a final record or resolve marker among ``frames`` (a dead process's spool, in order).

    A final record or marker always follows its intent, so only open intents are kept in memory.
    """
    found: dict[str, Intent] = {}
    for payload in frames:
        if payload[:1] == MARK:
            try:
                intent, body = _marker(payload)
            except ValueError:
                continue
            if intent:
                found[body["id"]] = Intent(body["id"], int(body["t"]), body.get("pid"), dict(body.get("a") or {}))
            else:
                found.pop(body, None)
        elif found:
            event_id = record_event_id(payload)
            if event_id is not None:
                found.pop(event_id, None)
    return list(found.values())


def spooled_frames(spool: spool_mod.ProcessSpool) -> Iterable[bytes]:
    """Every intact payload of an adopted spool after its ack cursor, in order (read from the files)."""
    for segment in list(spool.segments):
        if segment.number < spool.ack_segment:
            continue
        try:
            data = segment.path.read_bytes()
        except OSError:
            continue
        start = spool.ack_offset if segment.number == spool.ack_segment else 0
        for payload, _end in spool_mod.iter_frames(data, start):
            yield payload
