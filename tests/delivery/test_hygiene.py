"""Spool files are private (0600, directories 0700) and the chain key leaks nowhere."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import otel_audit
from otel_audit import runtime
from otel_audit.config import AuditConfig
from otel_audit.delivery.chain import ChainKey
from otel_audit.delivery.status import spool_status
from tests.delivery.conftest import CHAIN_KEY


def test_spool_files_are_0600_and_directories_0700(delivery) -> None:
    os.umask(0o022)
    delivery.start(OTEL_AUDIT_EXPORTER="otlp", OTEL_EXPORTER_OTLP_LOGS_ENDPOINT="http://127.0.0.1:9/v1/logs",
                   OTEL_EXPORTER_OTLP_LOGS_TIMEOUT="1", OTEL_AUDIT_FLUSH_TIMEOUT_MS="100")
    otel_audit.record("data_access", "read")
    files = [p for p in delivery.spool.rglob("*") if p.is_file()]
    dirs = [delivery.spool, *(p for p in delivery.spool.rglob("*") if p.is_dir())]
    assert {p.name for p in files} >= {"lock", "meta.json", "chain.state", "000000000001.seg"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in dirs:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_chain_key_appears_in_no_record_spool_log_or_error(delivery, capfd) -> None:
    delivery.start(OTEL_AUDIT_CHAIN_KEY=CHAIN_KEY, OTEL_AUDIT_CHAIN_KEY_ID="k1")
    otel_audit.record("data_access", "read", attributes={"app.note": "hello"})
    rt = runtime.get_runtime()
    texts = [repr(rt.config), str(rt.config), repr(rt.processor.key), str(rt.processor.key),
             repr(ChainKey.from_config(CHAIN_KEY, "k1")), str(spool_status(delivery.spool))]
    spool_bytes = b"".join(p.read_bytes() for p in delivery.spool.rglob("*") if p.is_file())
    runtime.reset_for_tests()
    texts.append(delivery.sink.read_text())
    out, err = capfd.readouterr()
    texts += [out, err]
    bad = subprocess.run([sys.executable, "-c", "from otel_audit.config import AuditConfig; AuditConfig.from_env()"],
                         env={**os.environ, "OTEL_AUDIT_CHAIN_KEY": "short-secret"}, capture_output=True, text=True)
    texts += [bad.stdout, bad.stderr]
    assert "OTEL_AUDIT_CHAIN_KEY" in bad.stderr and "short-secret" not in bad.stderr
    for text in texts:
        assert CHAIN_KEY not in text
    assert CHAIN_KEY.encode() not in spool_bytes
    assert "hmac-sha256" in texts[-3] or "hmac-sha256" in delivery.sink.read_text()


def test_config_repr_hides_chain_key() -> None:
    config = AuditConfig.from_env({"OTEL_AUDIT_CHAIN_KEY": CHAIN_KEY})
    assert CHAIN_KEY not in repr(config)
