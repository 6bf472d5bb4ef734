"""OTEL_AUDIT_REDACT_ALL_LOGS: application logs (stdlib logging bridged by contrib's handler, which
copies ``extra`` into attributes) are redacted before any exporter of the global provider."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import ConcurrentMultiLogRecordProcessor, LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from otel_audit.redaction import Redactor
from otel_audit.redaction.logs import install_on_provider, installed_processor
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.procs import base_env, launcher

SECRETS = ("hunter2-from-extra", "5555555555554444", "S3cretPw-in-dsn", "bob@example.com", "4111 1111 1111 1111")
ENV = {"OTEL_AUDIT_HMAC_KEY": "all-logs-test-key-0123456789"}


def _log_with_secrets(provider: LoggerProvider) -> None:
    handler = LoggingHandler(logger_provider=provider)
    log = logging.getLogger("redaction-test-app")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.warning(
            "payment by %s failed with card %s", "bob@example.com", "4111 1111 1111 1111",
            extra={"password": "hunter2-from-extra", "card_number": "5555555555554444",
                   "db_dsn": "postgres://app:S3cretPw-in-dsn@db/x", "order_id": "ORD-1"},
        )
        log.warning("clean message", extra={"order_id": "ORD-2"})
    finally:
        log.removeHandler(handler)


@pytest.mark.parametrize("multi", ["sync", "concurrent"])
def test_redaction_runs_before_every_processor_added_before_or_after(multi: str) -> None:
    provider = LoggerProvider(
        shutdown_on_exit=False,
        multi_log_record_processor=ConcurrentMultiLogRecordProcessor() if multi == "concurrent" else None,
    )
    early, late = InMemoryLogRecordExporter(), InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(early))
    provider.get_logger("existing-logger")  # loggers made before installation are covered too
    assert install_on_provider(provider, Redactor.from_config(None, environ=ENV))
    assert install_on_provider(provider, Redactor.from_config(None, environ=ENV))  # idempotent
    provider.add_log_record_processor(SimpleLogRecordProcessor(late))
    _log_with_secrets(provider)

    for exporter in (early, late):
        dirty, clean = exporter.get_finished_logs()
        record = dirty.log_record
        everything = str(dict(record.attributes)) + str(record.body)
        for secret in SECRETS:
            assert secret not in everything
        assert record.attributes["order_id"] == "ORD-1"
        assert record.attributes["password"] == "[REDACTED:secret_key]"
        assert record.attributes["audit.redaction.count"] >= 5
        assert "password" in record.attributes["audit.redaction.fields"]
        assert "audit.redaction.count" not in clean.log_record.attributes  # clean app logs stay as they were
        assert clean.log_record.body == "clean message"
    assert installed_processor(provider) is not None


def _run_script(receiver: OtlpReceiver, tmp_path: Path, **env: str) -> list:
    full_env = base_env(
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_AUDIT_SINK_PATH=str(tmp_path / "audit.jsonl"),
        OTEL_AUDIT_HMAC_KEY="launcher-test-key-0123456789",
        OTEL_SERVICE_NAME="app-logs-test",
        **env,
    )
    script = Path(__file__).parent / "apps" / "app_logs.py"
    done = subprocess.run([launcher(), sys.executable, str(script)], env=full_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    records = receiver.wait_for(lambda recs: sum(r.scope_name == "shop" for r in recs) >= 2)
    return [r for r in records if r.scope_name == "shop"]


#: Secret-class values of app_logs.py (redacted by default) and its PII (kept unless ``all``).
SECRET_VALUES = ("hunter2-from-extra", "5555555555554444", "S3cretPw-in-dsn", "4111 1111 1111 1111")


def test_launcher_app_logs_lose_their_secrets_by_default_and_pii_only_with_all(tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        leaked = _run_script(receiver, tmp_path, OTEL_AUDIT_REDACT_ALL_LOGS="off")
    assert "hunter2-from-extra" in str(leaked[0].attributes)  # the problem: contrib copies extra as-is

    with OtlpReceiver() as receiver:
        records = _run_script(receiver, tmp_path)  # the default: secrets
        raw = b"".join(receiver.raw_bodies)
    for secret in SECRET_VALUES:
        assert secret.encode() not in raw
    dirty = next(r for r in records if r.attributes.get("order_id") == "ORD-1")
    assert dirty.attributes["password"] == "[REDACTED:secret_key]"
    assert "bob@example.com" in dirty.body  # an e-mail is PII, not a secret: ordinary log lines keep it
    assert "audit.redaction.count" not in next(r for r in records if r.attributes.get("order_id") == "ORD-2").attributes

    for mode in ("all", "true"):  # true: the old opt-in's spelling
        with OtlpReceiver() as receiver:
            records = _run_script(receiver, tmp_path, OTEL_AUDIT_REDACT_ALL_LOGS=mode)
            raw = b"".join(receiver.raw_bodies)
        for secret in SECRETS:
            assert secret.encode() not in raw, mode
        dirty = next(r for r in records if r.attributes.get("order_id") == "ORD-1")
        clean = next(r for r in records if r.attributes.get("order_id") == "ORD-2")
        assert dirty.attributes["password"] == "[REDACTED:secret_key]"
        assert dirty.attributes["audit.redaction.count"] >= 5
        assert "audit.redaction.count" not in clean.attributes


SIGNED_QUERY = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Signature=" + "9f2c" * 16 + "&access_token=sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8t"
)
SIGNED_SECRETS = ("AKIAIOSFODNN7EXAMPLE", "9f2c9f2c", "sk-proj-Ab3dEf6h")


def test_werkzeug_access_log_with_a_signed_url_arrives_redacted_at_an_otlp_receiver(tmp_path: Path) -> None:
    """The issue's case: werkzeug's access log line quotes ``POST /echo?X-Amz-Credential=...``;
    with the standard ``OTEL_LOGS_EXPORTER=otlp`` and nothing else set, it is exported redacted."""
    from tests.support.procs import Server, free_port

    port = free_port()
    with OtlpReceiver() as receiver:
        env = base_env(
            OTEL_LOGS_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_SERVICE_NAME="access-log-test",
            OTEL_AUDIT_SPOOL_DIR=str(tmp_path / "spool"), OTEL_AUDIT_QUIET="true", APP_PORT=str(port),
            OTEL_BLRP_SCHEDULE_DELAY="100",
        )  # fmt: skip
        script = Path(__file__).parent / "apps" / "access_log_app.py"
        server = Server([launcher(), sys.executable, str(script)], env, f"http://127.0.0.1:{port}/health",
                        log_path=tmp_path / "server.log").wait_ready()  # fmt: skip
        try:
            import requests

            assert requests.post(f"http://127.0.0.1:{port}/echo?{SIGNED_QUERY}", timeout=10).status_code == 204
            records = receiver.wait_for(
                lambda recs: any(r.scope_name == "werkzeug" and "/echo" in str(r.body) for r in recs)
            )
        finally:
            server.stop()
        raw = b"".join(receiver.raw_bodies)
    line = next(str(r.body) for r in records if r.scope_name == "werkzeug" and "/echo" in str(r.body))
    assert "POST /echo?" in line and "[REDACTED:" in line, line
    for secret in SIGNED_SECRETS:
        assert secret not in line
        assert secret.encode() not in raw  # nor in any other exported byte (audit records included)


LATE_PROVIDER = """
import logging, os
from otel_audit import runtime
runtime.start()  # before the app sets its provider: installation waits for it
from opentelemetry._logs import set_logger_provider
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
exporter = InMemoryLogRecordExporter()
provider = LoggerProvider()
provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
set_logger_provider(provider)
log = logging.getLogger("late")
log.addHandler(LoggingHandler(logger_provider=provider))
log.warning("token=%s", "ghp_" + "x1" * 18, extra={"api_key": "late-api-key-value"})
[record] = exporter.get_finished_logs()
print(record.log_record.body, dict(record.log_record.attributes))
"""


def test_provider_set_after_start_is_covered(tmp_path: Path) -> None:
    env = base_env(OTEL_AUDIT_REDACT_ALL_LOGS="true", OTEL_AUDIT_SINK_PATH=str(tmp_path / "a.jsonl"), OTEL_AUDIT_QUIET="1",
                   OTEL_AUDIT_HMAC_KEY="late-provider-key-0123456789")
    done = subprocess.run([sys.executable, "-c", LATE_PROVIDER], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "late-api-key-value" not in done.stdout and "x1x1x1" not in done.stdout
    assert "[REDACTED:secret_key]" in done.stdout


@pytest.mark.parametrize(("raw", "mode"), [(None, "secrets"), ("secrets", "secrets"), ("ALL", "all"), ("off", "off"),
                                           ("true", "all"), ("1", "all"), ("false", "off"), ("no", "off")])
def test_redact_all_logs_modes_and_the_old_boolean_spellings(raw, mode) -> None:
    from otel_audit.config import AuditConfig

    assert AuditConfig.from_env({} if raw is None else {"OTEL_AUDIT_REDACT_ALL_LOGS": raw}).redact_all_logs == mode


def test_redact_all_logs_bad_value_names_the_choices() -> None:
    from otel_audit.config import AuditConfig
    from otel_audit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"OTEL_AUDIT_REDACT_ALL_LOGS: 'pii' is invalid: expected one of secrets, all, off"):
        AuditConfig.from_env({"OTEL_AUDIT_REDACT_ALL_LOGS": "pii"})


def test_secrets_redactor_masks_secrets_and_keeps_pii() -> None:
    from otel_audit.redaction.logs import secrets_redactor

    result = secrets_redactor(environ={}).redact(
        {"api_key": "k-123456789", "user": "bob@example.com", "ip": "203.0.113.9"},
        "card 4111 1111 1111 1111 from 203.0.113.9 by bob@example.com, Authorization: Bearer abcdef123456789",
        audit_record=False,
    )
    assert result.attributes == {"api_key": "[REDACTED:secret_key]", "user": "bob@example.com", "ip": "203.0.113.9"}
    assert result.body.startswith("card [REDACTED:credit_card] from 203.0.113.9 by bob@example.com, Authorization: ")
    assert "abcdef123456789" not in result.body
