"""The stand-in backends answer like the real services (no collector needed)."""

from __future__ import annotations

import base64
import gzip
import json
import urllib.error
import urllib.request
import zlib

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from .standins import Datadog, GrafanaCloud, Loki, SplunkHEC


def post(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, data=body if method == "POST" else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def otlp_body(event_id: str = "e1") -> bytes:
    record = LogRecord(
        event_name="audit.x",
        body=AnyValue(string_value="hello"),
        attributes=[KeyValue(key="audit.event_id", value=AnyValue(string_value=event_id)),
                    KeyValue(key="n", value=AnyValue(int_value=7))],
    )
    request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[record])])])
    request.resource_logs[0].scope_logs[0].scope.name = "otel_audit"
    return request.SerializeToString()


def test_splunk_hec_wire_format() -> None:
    with SplunkHEC("tok") as hec:
        url = f"{hec.base_url}/services/collector/event"
        events = b'{"event":"a","fields":{"x":1},"index":"i"}\n{"event":{"k":"v"},"time":1.5}{"event":"c"}'
        assert post(url, gzip.compress(events), {"Authorization": "Splunk tok", "Content-Encoding": "gzip"})[:2] == (
            200, b'{"text":"Success","code":0}')
        assert [e["event"] for e in hec.snapshot()] == ["a", {"k": "v"}, "c"]
        assert post(url, events, {})[:2] == (401, b'{"text":"Token is required","code":2}')
        assert post(url, events, {"Authorization": "Splunk nope"})[:2] == (403, b'{"text":"Invalid token","code":4}')
        assert post(url, b"", {"Authorization": "Splunk tok"})[:2] == (400, b'{"text":"No data","code":5}')
        assert post(url, b'{"event":', {"Authorization": "Splunk tok"})[:2] == (400, b'{"text":"Invalid data format","code":6}')
        assert post(f"{hec.base_url}/services/collector/health", b"", {}, method="GET")[0] == 200
        assert len(hec.snapshot()) == 3


def test_datadog_logs_intake_v2_and_validate() -> None:
    with Datadog("k" * 32) as dd:
        logs = [{"message": "m1", "ddsource": "otel", "audit.event_id": "a"}, {"message": "m2"}]
        status, body, _ = post(f"{dd.base_url}/api/v2/logs", gzip.compress(json.dumps(logs).encode()),
                               {"DD-API-KEY": "k" * 32, "Content-Type": "application/json", "Content-Encoding": "gzip"})
        assert (status, body) == (202, b"{}")
        status, _, _ = post(f"{dd.base_url}/api/v2/logs", zlib.compress(json.dumps(logs[0]).encode()),
                            {"DD-API-KEY": "k" * 32, "Content-Type": "application/json", "Content-Encoding": "deflate"})
        assert status == 202
        assert [entry["message"] for entry in dd.v2_snapshot()] == ["m1", "m2", "m1"]
        assert post(f"{dd.base_url}/api/v2/logs", b"[]", {"DD-API-KEY": "wrong"})[:2] == (403, b'{"errors":["Forbidden"]}')
        assert post(f"{dd.base_url}/api/v1/validate", b"", {"DD-API-KEY": "k" * 32}, method="GET")[:2] == (200, b'{"valid":true}')
        assert post(f"{dd.base_url}/api/v1/validate", b"", {"DD-API-KEY": "x"}, method="GET")[0] == 403
        # OTLP logs intake
        status, body, headers = post(f"{dd.base_url}/v1/logs", otlp_body(),
                                     {"dd-api-key": "k" * 32, "Content-Type": "application/x-protobuf"})
        assert status == 200 and headers["Content-Type"] == "application/x-protobuf"
        ExportLogsServiceResponse.FromString(body)
        assert dd.snapshot()[0]["attributes"] == {"audit.event_id": "e1", "n": 7}
        assert post(f"{dd.base_url}/v1/logs", otlp_body(), {"Content-Type": "application/x-protobuf"})[0] == 403


def test_loki_otlp_endpoint() -> None:
    with Loki(tenant="t1") as loki:
        url = f"{loki.base_url}/otlp/v1/logs"
        ok = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", "X-Scope-OrgID": "t1"}
        assert post(url, gzip.compress(otlp_body("g")), ok)[0] == 204
        assert loki.snapshot()[0]["scope"] == "otel_audit" and loki.snapshot()[0]["event_name"] == "audit.x"
        assert post(url, otlp_body(), {**ok, "Content-Encoding": "identity", "X-Scope-OrgID": "other"})[0] == 401
        assert post(url, b"{}", {"Content-Type": "application/json", "X-Scope-OrgID": "t1"})[0] == 415
        assert post(f"{loki.base_url}/v1/logs", otlp_body(), ok)[0] == 404  # Loki serves OTLP under /otlp only


def test_grafana_cloud_basic_auth() -> None:
    with GrafanaCloud("123", "tok") as cloud:
        url = f"{cloud.base_url}/otlp/v1/logs"
        good = "Basic " + base64.b64encode(b"123:tok").decode()
        assert post(url, otlp_body(), {"Content-Type": "application/x-protobuf", "Authorization": good})[0] == 200
        assert post(url, otlp_body(), {"Content-Type": "application/x-protobuf"})[0] == 401
        assert len(cloud.snapshot()) == 1


def test_stopped_standin_is_down_and_restarts_on_its_port() -> None:
    hec = SplunkHEC("tok").start()
    port = hec.port
    hec.stop()
    try:
        post(f"http://127.0.0.1:{port}/services/collector/health", b"", {}, method="GET")
        raise AssertionError("stopped stand-in still answers")
    except urllib.error.URLError:
        pass
    with SplunkHEC("tok", port=port) as again:
        assert again.port == port
        assert post(f"{again.base_url}/services/collector/health", b"", {}, method="GET")[0] == 200
