"""Local stand-ins for the audit backends, speaking each one's documented wire format.

Every stand-in is a ThreadingHTTPServer on 127.0.0.1 (an ephemeral port, or a given one so that a
stopped backend can come back on the same address) served from a daemon thread. They record what
they accepted and refuse what the real service would refuse (missing or wrong credentials,
undecodable bodies), with the real service's status codes and reply bodies:

* Splunk HTTP Event Collector - ``POST /services/collector`` and ``/services/collector/event``
  (``/event/1.0`` too), ``Authorization: Splunk <token>``, optionally gzip, body = one or more
  JSON event objects simply concatenated, reply ``{"text":"Success","code":0}``; errors as HEC
  sends them (401 code 2 "Token is required", 403 code 4 "Invalid token", 400 code 5 "No data",
  400 code 6 "Invalid data format"). ``GET /services/collector/health`` -> code 17.
* Datadog - logs intake v2 ``POST /api/v2/logs`` (``DD-API-KEY``, gzip or deflate, JSON array of
  log objects or a single object, reply 202 ``{}``; 403 ``{"errors":["Forbidden"]}``),
  ``GET /api/v1/validate`` (``{"valid":true}``), and the OTLP logs intake ``POST /v1/logs``
  (``dd-api-key``, OTLP/HTTP protobuf) used by otlp_http.
* Loki 3.x native OTLP - ``POST /otlp/v1/logs`` (OTLP/HTTP protobuf, optional gzip; 204 No
  Content like Loki's push API).
* Grafana Cloud OTLP gateway - ``POST /otlp/v1/logs`` behind HTTP basic auth
  (instance id : access token), 401 otherwise.

OTLP bodies are decoded with opentelemetry-proto into flat record dicts (see ``flatten_otlp``).
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from tests.support.otlp_receiver import any_value  # one OTLP AnyValue decoder for all tests


# ----------------------------------------------------------------------------------------------
# OTLP decoding


def flatten_otlp(request: ExportLogsServiceRequest) -> list[dict[str, Any]]:
    """One dict per log record: scope, event_name, body, attributes, resource, times, severity."""
    out = []
    for rl in request.resource_logs:
        resource = {kv.key: any_value(kv.value) for kv in rl.resource.attributes}
        for sl in rl.scope_logs:
            for lr in sl.log_records:
                out.append(
                    {
                        "scope": sl.scope.name,
                        "event_name": lr.event_name,
                        "time_unix_nano": lr.time_unix_nano,
                        "severity_number": lr.severity_number,
                        "severity_text": lr.severity_text,
                        "body": any_value(lr.body),
                        "attributes": {kv.key: any_value(kv.value) for kv in lr.attributes},
                        "resource": resource,
                    }
                )
    return out


def decode_body(headers: Any, raw: bytes) -> bytes:
    encoding = (headers.get("Content-Encoding") or "").strip().lower()
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    if encoding in ("", "identity"):
        return raw
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


# ----------------------------------------------------------------------------------------------
# Server plumbing


class StandIn:
    """Base: a threaded HTTP server with a request log and a list of accepted records."""

    name = "stand-in"

    def __init__(self, port: int = 0) -> None:
        self.requested_port = port
        self.records: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []  # method, path, status, lower-cased headers
        self.lock = threading.Lock()
        self.connections: set[Any] = set()  # open keep-alive sockets, closed on stop()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.port = port

    # -- lifecycle
    def start(self) -> "StandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def setup(self) -> None:
                super().setup()
                with standin.lock:
                    standin.connections.add(self.connection)

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    with standin.lock:
                        standin.connections.discard(self.connection)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self) -> None:  # noqa: N802
                standin._dispatch(self, "GET", b"")

            def do_POST(self) -> None:  # noqa: N802
                standin._dispatch(self, "POST", self._body())

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", self.requested_port), Handler)
        self.port = self.server.server_address[1]
        self.requested_port = self.port  # a restart comes back on the same port
        self.thread = threading.Thread(target=self.server.serve_forever, name=self.name, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        # A stopped backend must look down: also drop keep-alive connections still being served.
        with self.lock:
            conns, self.connections = list(self.connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.thread is not None:
            self.thread.join(timeout=10)
            self.thread = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- request handling
    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        path = handler.path.split("?", 1)[0]
        try:
            status, ctype, payload = self.handle(method, path, handler.headers, body)
        except Exception as exc:  # a bug in the stand-in must not look like success
            status, ctype, payload = 500, "text/plain", f"stand-in error: {exc!r}".encode()
        with self.lock:
            headers = {k.lower(): v for k, v in handler.headers.items()}
            self.requests.append({"method": method, "path": path, "status": status, "headers": headers})
        handler.send_response(status)
        if payload or status not in (204, 304):
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if payload and status not in (204, 304):
            handler.wfile.write(payload)

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def add(self, records: list[dict[str, Any]]) -> None:
        with self.lock:
            self.records.extend(records)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.records)

    def statuses(self) -> list[int]:
        with self.lock:
            return [r["status"] for r in self.requests]

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# ----------------------------------------------------------------------------------------------
# Splunk HEC


class SplunkHEC(StandIn):
    name = "splunk-hec"
    EVENT_PATHS = ("/services/collector", "/services/collector/event", "/services/collector/event/1.0")

    def __init__(self, token: str, port: int = 0) -> None:
        super().__init__(port)
        self.token = token

    def handle(self, method, path, headers, body):
        if method == "GET" and path == "/services/collector/health":
            return 200, "application/json", _json({"text": "HEC is healthy", "code": 17})
        if method != "POST" or path not in self.EVENT_PATHS:
            return 404, "application/json", _json({"text": "The requested URL was not found on this server.", "code": 404})
        auth = headers.get("Authorization")
        if not auth:
            return 401, "application/json", _json({"text": "Token is required", "code": 2})
        scheme, _, token = auth.partition(" ")
        if scheme != "Splunk" or token.strip() != self.token:
            return 403, "application/json", _json({"text": "Invalid token", "code": 4})
        try:
            text = decode_body(headers, body).decode("utf-8")
        except Exception:
            return 400, "application/json", _json({"text": "Invalid data format", "code": 6})
        events = []
        decoder = json.JSONDecoder()
        pos = 0
        try:
            while True:
                while pos < len(text) and text[pos].isspace():
                    pos += 1
                if pos >= len(text):
                    break
                event, pos = decoder.raw_decode(text, pos)
                if not isinstance(event, dict) or "event" not in event:
                    return 400, "application/json", _json({"text": "Event field is required", "code": 12})
                events.append(event)
        except json.JSONDecodeError:
            return 400, "application/json", _json({"text": "Invalid data format", "code": 6})
        if not events:
            return 400, "application/json", _json({"text": "No data", "code": 5})
        self.add(events)
        return 200, "application/json", _json({"text": "Success", "code": 0})


# ----------------------------------------------------------------------------------------------
# OTLP/HTTP receivers (Loki, Grafana Cloud, Datadog OTLP intake)


class OTLPLogs(StandIn):
    """OTLP/HTTP protobuf logs endpoint at ``path``; ``check(headers)`` returns an error reply or None."""

    name = "otlp"

    def __init__(
        self,
        path: str,
        check: Callable[[Any], tuple[int, str, bytes] | None] | None = None,
        success_status: int = 200,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.path = path
        self.check = check
        self.success_status = success_status
        self.otlp_requests: list[ExportLogsServiceRequest] = []  # every accepted request, in order

    def write_otlp_json(self, path: Any, dedupe: bool = False) -> int:
        """The accepted requests as OTLP JSON lines (what the file exporter writes and
        ``otel-audit verify`` reads); the number of log records written. ``dedupe``: keep only
        the first copy of each ``audit.event_id`` (the at-least-once clean-up)."""
        from google.protobuf.json_format import MessageToJson

        with self.lock:
            requests = [ExportLogsServiceRequest.FromString(r.SerializeToString()) for r in self.otlp_requests]
        seen: set[str] = set()
        written = 0
        with open(path, "w") as handle:
            for request in requests:
                if dedupe:
                    for rl in request.resource_logs:
                        for sl in rl.scope_logs:
                            keep = []
                            for lr in sl.log_records:
                                event_id = next((kv.value.string_value for kv in lr.attributes if kv.key == "audit.event_id"), None)
                                if event_id is None or event_id not in seen:
                                    keep.append(lr)
                                    if event_id is not None:
                                        seen.add(event_id)
                            del sl.log_records[:]
                            sl.log_records.extend(keep)
                written += sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
                handle.write(MessageToJson(request, indent=None) + "\n")
        return written

    def handle(self, method, path, headers, body):
        if method != "POST" or path != self.path:
            return 404, "text/plain", b"404 page not found\n"
        if self.check is not None:
            refused = self.check(headers)
            if refused is not None:
                return refused
        return self.accept_otlp(headers, body)

    def accept_otlp(self, headers, body):
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/x-protobuf":
            return 415, "text/plain", f"unsupported content type {ctype!r}".encode()
        try:
            request = ExportLogsServiceRequest.FromString(decode_body(headers, body))
        except Exception as exc:
            return 400, "text/plain", f"cannot decode OTLP request: {exc}".encode()
        with self.lock:
            self.otlp_requests.append(request)
        self.add(flatten_otlp(request))
        if self.success_status == 204:
            return 204, "application/x-protobuf", b""
        return self.success_status, "application/x-protobuf", ExportLogsServiceResponse().SerializeToString()


# Loki's OTLP ingestion (docs "Ingesting logs to Loki using OpenTelemetry Collector"): these
# resource attributes become index labels by default; every other resource attribute, the
# scope and the log attributes become structured metadata; names have non-alphanumerics as `_`.
LOKI_DEFAULT_INDEX_LABELS = (
    "cloud.availability_zone", "cloud.region", "container.name", "deployment.environment",
    "deployment.environment.name", "k8s.cluster.name", "k8s.container.name", "k8s.cronjob.name",
    "k8s.daemonset.name", "k8s.deployment.name", "k8s.job.name", "k8s.namespace.name", "k8s.pod.name",
    "k8s.replicaset.name", "k8s.statefulset.name", "service.name", "service.namespace", "service.instance.id",
)


def loki_name(key: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in key)


def loki_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=list)


class Loki(OTLPLogs):
    """Loki 3.x native OTLP ingestion: ``<loki>/otlp/v1/logs``; X-Scope-OrgID recorded.

    ``index_label`` / ``structured_metadata`` model ``limits_config.otlp_config.
    resource_attributes.attributes_config`` (resource attributes added to or taken out of the
    default index labels); ``streams()`` is what Loki would store: labels, metadata, line.
    """

    name = "loki"

    def __init__(self, tenant: str | None = None, port: int = 0, index_label: tuple[str, ...] = (),
                 structured_metadata: tuple[str, ...] = ()) -> None:
        self.tenant = tenant  # assign another value to "rotate" the credential Loki accepts
        self.index_label = (set(LOKI_DEFAULT_INDEX_LABELS) | set(index_label)) - set(structured_metadata)

        def check(headers):
            if self.tenant is not None and headers.get("X-Scope-OrgID") != self.tenant:
                return 401, "text/plain", b"no org id\n"
            return None

        super().__init__("/otlp/v1/logs", check=check, success_status=204, port=port)

    def stream_of(self, record: dict[str, Any]) -> dict[str, Any]:
        labels = {loki_name(k): loki_value(v) for k, v in record["resource"].items() if k in self.index_label}
        labels.setdefault("service_name", "unknown_service")
        metadata = {loki_name(k): loki_value(v) for k, v in record["resource"].items() if k not in self.index_label}
        metadata.update({loki_name(k): loki_value(v) for k, v in record["attributes"].items()})
        if record["scope"]:
            metadata["scope_name"] = record["scope"]
        if record["severity_text"]:
            metadata["severity_text"] = record["severity_text"]
        return {"labels": labels, "structured_metadata": metadata, "line": loki_value(record["body"])}

    def streams(self) -> list[dict[str, Any]]:
        return [self.stream_of(r) for r in self.snapshot()]


class GrafanaCloud(OTLPLogs):
    """Grafana Cloud OTLP gateway: ``<endpoint>/v1/logs`` with basic auth instance-id:token."""

    name = "grafana-cloud"

    def __init__(self, instance_id: str, token: str, port: int = 0) -> None:
        self.expected = "Basic " + base64.b64encode(f"{instance_id}:{token}".encode()).decode()

        def check(headers):
            if headers.get("Authorization") != self.expected:
                return 401, "application/json", _json({"status": "error", "error": "authentication error: invalid credentials"})
            return None

        super().__init__("/otlp/v1/logs", check=check, port=port)


class Datadog(OTLPLogs):
    """Datadog: logs intake v2 (datadog exporter), API key validation, and the OTLP logs intake."""

    name = "datadog"

    def __init__(self, api_key: str, port: int = 0) -> None:
        self.api_key = api_key
        self.v2_logs: list[dict[str, Any]] = []
        super().__init__("/v1/logs", port=port)

    def _key_ok(self, headers) -> bool:
        return headers.get("DD-API-KEY") == self.api_key

    def handle(self, method, path, headers, body):
        forbidden = (403, "application/json", _json({"errors": ["Forbidden"]}))
        if path == "/api/v1/validate" and method == "GET":
            if not self._key_ok(headers):
                return forbidden
            return 200, "application/json", _json({"valid": True})
        if path == "/api/v2/logs" and method == "POST":
            if not self._key_ok(headers):
                return forbidden
            try:
                payload = json.loads(decode_body(headers, body))
            except Exception:
                return 400, "application/json", _json({"errors": ["Bad Request"]})
            logs = payload if isinstance(payload, list) else [payload]
            if not all(isinstance(entry, dict) for entry in logs):
                return 400, "application/json", _json({"errors": ["Bad Request"]})
            with self.lock:
                self.v2_logs.extend(logs)
            return 202, "application/json", b"{}"
        if path == "/v1/logs" and method == "POST":
            if not self._key_ok(headers):  # header names are case-insensitive: dd-api-key
                return forbidden
            return self.accept_otlp(headers, body)
        return 404, "application/json", _json({"errors": ["Not Found"]})

    def v2_snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.v2_logs)
