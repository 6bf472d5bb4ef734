"""OTLP transport resolution: the OTel variables' precedence, the distro's gRPC default caught when the
endpoint is plainly OTLP/HTTP (warned once, under the real launcher), and ``otel-audit status`` naming
the exporter, protocol and endpoint each process resolved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from otel_audit.transport import OtlpTransport
from otel_audit.errors import ConfigError
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.procs import REPO, Server, base_env, free_port, launcher

APP = REPO / "examples" / "flask_app" / "app.py"
WARNING = "records go over OTLP/gRPC only because opentelemetry-distro set OTEL_EXPORTER_OTLP_PROTOCOL=grpc"


@pytest.mark.parametrize(("env", "protocol", "protocol_from", "endpoint"), [
    ({}, "http/protobuf", "default", "http://localhost:4318/v1/logs"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL", "http://localhost:4317"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf"},
     "http/protobuf", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http://localhost:4318/v1/logs"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http/protobuf", "default", "http://c:4318/v1/logs"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL", "http://c:4317"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://l:9/x"},
     "http/protobuf", "default", "http://l:9/x"),
])
def test_precedence_follows_the_otel_specification(env, protocol, protocol_from, endpoint) -> None:
    transport = OtlpTransport.resolve(env, initial=env)
    assert (transport.protocol, transport.protocol_from, transport.endpoint) == (protocol, protocol_from, endpoint)
    assert transport.mismatch_warning() is None


def test_grpc_set_in_process_to_an_http_endpoint_is_named_as_the_distro_default() -> None:
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://t0k3n@c:4318/v1/logs?k=s3cr3t"}
    started_with = {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": env["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"]}
    warning = OtlpTransport.resolve(env, initial=started_with).mismatch_warning()
    assert warning and warning.startswith(WARNING)
    assert "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://c:4318/v1/logs" in warning
    assert "set OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf" in warning
    assert "t0k3n" not in warning and "s3cr3t" not in warning  # user-info and query may carry credentials
    # The user's own grpc, or a gRPC-looking endpoint, is not second-guessed.
    assert OtlpTransport.resolve(env, initial=env).mismatch_warning() is None
    grpc_port = dict(env, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT="http://c:4317")
    assert OtlpTransport.resolve(grpc_port, initial={}).mismatch_warning() is None


def test_a_protocol_nobody_here_speaks_is_refused_naming_its_variable() -> None:
    transport = OtlpTransport.resolve({"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/json"}, initial={})
    with pytest.raises(ConfigError, match=r"^OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/json' is invalid.*http/json"):
        transport.check()


def _run_app(tmp_path: Path, **env: str) -> tuple[Server, str]:
    port = free_port()
    full_env = base_env(PORT=str(port), NOTES_DB=str(tmp_path / "notes.db"), OTEL_SERVICE_NAME="transport-test",
                        OTEL_AUDIT_SPOOL_DIR=str(tmp_path / "spool"), OTEL_TRACES_EXPORTER="none",
                        OTEL_METRICS_EXPORTER="none", **env)
    server = Server([launcher(), sys.executable, str(APP)], full_env, f"http://127.0.0.1:{port}/login",
                    log_path=tmp_path / "server.log").wait_ready()
    return server, f"http://127.0.0.1:{port}"


def _status(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otel_audit.cli", "status", "--spool-dir", str(tmp_path / "spool")],
                          env=base_env(**env), capture_output=True, text=True, timeout=60)


def test_only_a_logs_endpoint_under_the_launcher_warns_once_and_status_says_why(tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        endpoint = f"{receiver.endpoint}/v1/logs"
        server, base = _run_app(tmp_path, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=endpoint)
        try:
            requests.post(f"{base}/login", data={"username": "alice", "password": "wrong"}, timeout=10)
            status = _status(tmp_path, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=endpoint)
        finally:
            server.stop(sig=9)
        output = server.output()
        assert receiver.audit_records() == []  # gRPC to an HTTP port: nothing arrives, as the warning says
    assert output.count(WARNING) == 1, output
    assert f"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT={endpoint} is an OTLP/HTTP endpoint" in output
    assert f"records go to OTLP (grpc) to {endpoint}" in output
    assert status.returncode == 0, status.stderr
    # What a process started now would do, with the same warning, and what the running one resolved.
    assert f"a process started now under opentelemetry-instrument sends to: OTLP grpc to {endpoint}" in status.stdout
    assert "WARNING: " + WARNING in status.stdout
    assert (f"sends to: OTLP grpc to {endpoint} (protocol from OTEL_EXPORTER_OTLP_PROTOCOL (opentelemetry-distro's "
            "default); endpoint from OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)") in status.stdout


def test_the_logs_protocol_set_by_the_user_sends_over_http_without_a_warning(tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        endpoint = f"{receiver.endpoint}/v1/logs"
        env = dict(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_LOGS_PROTOCOL="http/protobuf")
        server, base = _run_app(tmp_path, **env)
        try:
            requests.post(f"{base}/login", data={"username": "alice", "password": "wrong"}, timeout=10)
            receiver.wait_for(lambda recs: any(r.event_name == "audit.authentication.login_failed" for r in recs))
            status = _status(tmp_path, **env)
        finally:
            server.stop(sig=2)
        output = server.output()
    assert "WARNING" not in output, output
    assert f"records go to OTLP (http/protobuf) to {endpoint}" in output
    report = _status(tmp_path, **env)
    assert "WARNING" not in status.stdout and "WARNING" not in report.stdout
    as_json = json.loads(subprocess.run(
        [sys.executable, "-m", "otel_audit.cli", "status", "--json", "--spool-dir", str(tmp_path / "spool")],
        env=base_env(**env), capture_output=True, text=True, timeout=60, check=True).stdout)
    assert as_json["destination"] == {"exporter": "otlp", "protocol": "http/protobuf",
                                      "protocol_from": "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "endpoint": endpoint,
                                      "endpoint_from": "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"}
    assert as_json["warning"] is None
