"""A real OTLP/HTTP logs receiver on 127.0.0.1 for tests: decodes ExportLogsServiceRequest with
opentelemetry-proto and keeps every record (with its resource and scope) in memory."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def any_value(value: Any) -> Any:
    """An OTLP AnyValue as a plain Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


@dataclass
class ReceivedRecord:
    event_name: str
    body: Any
    attributes: dict[str, Any]
    severity_number: int
    severity_text: str
    time_unix_nano: int
    trace_id: str
    span_id: str
    scope_name: str
    resource: dict[str, Any]
    raw: Any = field(repr=False, default=None)


class OtlpReceiver:
    """Start with ``with OtlpReceiver() as r:``; ``r.endpoint`` is the base URL for OTLP/HTTP."""

    def __init__(self) -> None:
        self.records: list[ReceivedRecord] = []
        self.spans: list[dict[str, Any]] = []  # {"name", "trace_id", "span_id", "kind", "attributes"}
        self.raw_bodies: list[bytes] = []
        self.fail_with: int | None = None  # set to e.g. 503 to refuse exports
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                if self.path == "/v1/traces":
                    traces = ExportTraceServiceRequest()
                    traces.ParseFromString(data)
                    receiver._add_spans(traces)
                    self._reply(ExportTraceServiceResponse().SerializeToString())
                    return
                if self.path != "/v1/logs":
                    self.send_response(404)
                    self.end_headers()
                    return
                if receiver.fail_with:
                    self.send_response(receiver.fail_with)
                    self.end_headers()
                    return
                request = ExportLogsServiceRequest()
                request.ParseFromString(data)
                receiver._add(request, data)
                self._reply(ExportLogsServiceResponse().SerializeToString())

            def _reply(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _add(self, request: ExportLogsServiceRequest, data: bytes) -> None:
        with self._lock:
            self.raw_bodies.append(data)
            for resource_logs in request.resource_logs:
                resource = {kv.key: any_value(kv.value) for kv in resource_logs.resource.attributes}
                for scope_logs in resource_logs.scope_logs:
                    for rec in scope_logs.log_records:
                        self.records.append(
                            ReceivedRecord(
                                event_name=rec.event_name,
                                body=any_value(rec.body),
                                attributes={kv.key: any_value(kv.value) for kv in rec.attributes},
                                severity_number=rec.severity_number,
                                severity_text=rec.severity_text,
                                time_unix_nano=rec.time_unix_nano,
                                trace_id=rec.trace_id.hex(),
                                span_id=rec.span_id.hex(),
                                scope_name=scope_logs.scope.name,
                                resource=resource,
                                raw=MessageToDict(rec),
                            )
                        )

    def _add_spans(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "kind": span.kind,
                                "scope": scope_spans.scope.name,
                                "attributes": {kv.key: any_value(kv.value) for kv in span.attributes},
                            }
                        )

    def audit_records(self) -> list[ReceivedRecord]:
        with self._lock:
            return [r for r in self.records if r.event_name.startswith("audit.")]

    def wait_for(self, predicate: Callable[[list[ReceivedRecord]], bool], timeout: float = 15.0) -> list[ReceivedRecord]:
        """Poll until ``predicate(records)`` is true; returns the records (asserts on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                snapshot = list(self.records)
            if predicate(snapshot):
                return snapshot
            if time.monotonic() > deadline:
                names = [r.event_name for r in snapshot]
                raise AssertionError(f"timed out after {timeout}s; received {len(snapshot)} records: {names}")
            time.sleep(0.05)

    def __enter__(self) -> "OtlpReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
