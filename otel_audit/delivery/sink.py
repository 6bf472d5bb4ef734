"""The embedded default sink: an append-only JSON-lines file, one log record per line.

Used when no logs exporter is configured, so audit records never vanish into a no-op logger
provider. Each line is written with a single ``write`` on an ``O_APPEND`` descriptor, so several
processes (gunicorn workers) can share one file without interleaving. The file is created 0600.
It lives in ``delivery/`` beside the processor that feeds it (the processor's exporter thread
hands it lines spliced from the spooled bytes, ``spooled_codec``); of delivery/ it imports only ``frames``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from otel_audit._logs_compat import LogExporter, LogExportResult
from otel_audit.delivery.frames import sink_line


def record_to_dict(log_record: Any) -> dict[str, Any]:
    """A ReadableLogRecord as the plain dict the sink writes (and ``otel-audit verify`` reads)."""
    record = log_record.log_record if hasattr(log_record, "log_record") else log_record
    scope = getattr(log_record, "instrumentation_scope", None)
    resource = getattr(log_record, "resource", None)
    severity = record.severity_number
    out: dict[str, Any] = {
        "time_unix_nano": record.timestamp,
        "observed_time_unix_nano": record.observed_timestamp,
        "event_name": record.event_name,
        "severity_number": severity.value if severity is not None else None,
        "severity_text": record.severity_text,
        "body": record.body,
        "attributes": dict(record.attributes or {}),
        "trace_id": f"{record.trace_id:032x}" if record.trace_id else "",
        "span_id": f"{record.span_id:016x}" if record.span_id else "",
        "trace_flags": int(record.trace_flags or 0),
    }
    if scope is not None:
        out["scope"] = {"name": scope.name, "version": scope.version}
    if resource is not None:
        out["resource"] = dict(resource.attributes)
    return out


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def encode_line(log_record: Any) -> bytes:
    return (json.dumps(record_to_dict(log_record), default=_default, separators=(",", ":")) + "\n").encode()


class JsonLinesExporter(LogExporter):
    """Appends each exported record as one JSON line; fsyncs on ``force_flush`` and shutdown."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()
        self._tails: dict[tuple[int, int], tuple[Any, Any, bytes]] = {}
        self._last_tail: tuple[Any, Any, bytes] = (None, None, b"")

    def spooled_codec(self, payload: bytes, resource: Any, scope: Any) -> bytes:
        """A spooled record straight to its line (the durable processor calls this instead of
        decoding it into an SDK record); same content as :func:`encode_line`."""
        last = self._last_tail  # one spool's records come in runs: same resource and scope objects
        if last[0] is resource and last[1] is scope:
            return sink_line(payload, last[2])
        key = (id(resource), id(scope))
        cached = self._tails.get(key)
        if cached is None or cached[0] is not resource or cached[1] is not scope:
            tail = ""
            if scope is not None:
                tail += ',"scope":' + json.dumps({"name": scope.name, "version": scope.version}, separators=(",", ":"))
            if resource is not None:
                tail += ',"resource":' + json.dumps(dict(resource.attributes), default=_default, separators=(",", ":"))
            if len(self._tails) > 64:
                self._tails.clear()
            cached = self._tails[key] = (resource, scope, tail.encode("ascii"))
        self._last_tail = cached
        return sink_line(payload, cached[2])

    def export(self, batch: Sequence[Any]) -> LogExportResult:
        """``batch``: SDK records, or lines already made by :meth:`spooled_codec`."""
        data = b"".join(record if isinstance(record, bytes) else encode_line(record) for record in batch)
        try:
            with self._lock:
                if self._fd < 0:
                    return LogExportResult.FAILURE
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
        except OSError:
            return LogExportResult.FAILURE
        return LogExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
        return True

    def shutdown(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1


def read_sink(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Records from a sink file, oldest first; a torn last line (crash mid-write) is skipped."""
    with open(path, "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break
            try:
                yield json.loads(line)
            except ValueError:
                continue
