"""``OTEL_AUDIT_EXPORT_DELAY_MS``: after a batch that was not full the exporter lets the next one
build up that long, and a flush (or shutdown) cuts the wait short instead of sitting it out."""

from __future__ import annotations

import time

import pytest

import otel_audit
from otel_audit import runtime
from otel_audit.config import AuditConfig, ConfigError
from otel_audit.delivery.sink import read_sink

LONG_DELAY_MS = 30_000


def _sunk(delivery) -> list[str]:
    if not delivery.sink.exists():
        return []
    return [r["attributes"]["audit.action"] for r in read_sink(delivery.sink)
            if r["attributes"]["audit.category"] != "audit_system"]


def _start_record_sent(delivery) -> None:
    """Send the chain's start records now, whichever thread ran first: if the exporter looked
    before they were spooled, they woke it and waits out the delay like any
    other (a flush cuts the wait short). What is recorded after it then waits the delay."""
    assert runtime.flush(LONG_DELAY_MS)
    assert delivery.sink.exists() and next(read_sink(delivery.sink), None) is not None
    assert _sunk(delivery) == [], "only the chain's own start records were sent"


def test_records_wait_for_the_delay_and_a_flush_sends_them_at_once(delivery) -> None:
    delivery.start(OTEL_AUDIT_EXPORT_DELAY_MS=str(LONG_DELAY_MS))
    _start_record_sent(delivery)
    otel_audit.record("data_access", "first_read")
    otel_audit.record("data_access", "second_read")
    time.sleep(0.7)  # the exporter woke (it polls every 0.5 s when idle) and lets the batch build up
    assert _sunk(delivery) == [], "within the delay the batch builds up"

    started = time.monotonic()
    assert runtime.flush(LONG_DELAY_MS)
    took = time.monotonic() - started
    assert _sunk(delivery) == ["first_read", "second_read"]
    assert took < LONG_DELAY_MS / 1000 / 3, f"the flush sat out the export delay ({took:.1f} s)"


def test_shutdown_does_not_sit_out_the_delay(delivery) -> None:
    delivery.start(OTEL_AUDIT_EXPORT_DELAY_MS=str(LONG_DELAY_MS))
    _start_record_sent(delivery)
    otel_audit.record("data_access", "last_read")
    time.sleep(0.7)
    started = time.monotonic()
    runtime.stop()
    took = time.monotonic() - started
    assert _sunk(delivery) == ["last_read"], "shutdown exports what the delay held back"
    assert took < LONG_DELAY_MS / 1000 / 3, f"shutdown sat out the export delay ({took:.1f} s)"


def test_the_delay_is_read_and_checked() -> None:
    assert AuditConfig.from_env({}).export_delay_ms == 50
    assert AuditConfig.from_env({"OTEL_AUDIT_EXPORT_DELAY_MS": "0"}).export_delay_ms == 0
    with pytest.raises(ConfigError, match=r"OTEL_AUDIT_EXPORT_DELAY_MS: '-5' is invalid: expected 0 or more"):
        AuditConfig.from_env({"OTEL_AUDIT_EXPORT_DELAY_MS": "-5"})
