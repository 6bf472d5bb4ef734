"""Fail-closed: when the spool cannot take records, audited requests get 503 before the view runs.
Fail-open: requests succeed and the drop counter says how many records were lost."""

from __future__ import annotations

import time

import flask
import pytest

from otel_audit import runtime
from otel_audit.instrumentation.flask import FlaskAuditInstrumentor


@pytest.fixture
def app():
    instrumentor = FlaskAuditInstrumentor()
    instrumentor.instrument()
    app = flask.Flask(__name__)
    app.view_calls = 0

    @app.post("/transfer")
    def transfer():
        app.view_calls += 1
        return {"ok": True}

    yield app
    instrumentor.uninstrument()


def _unwritable_spool(delivery) -> None:
    blocker = delivery.tmp_path / "not-a-dir"
    blocker.write_text("a regular file where the spool directory should be\n")
    delivery.monkeypatch.setenv("OTEL_AUDIT_SPOOL_DIR", str(blocker / "spool"))  # ENOTDIR, even for root


def test_fail_closed_refuses_before_the_view_and_recovers(delivery, app) -> None:
    _unwritable_spool(delivery)
    delivery.start(OTEL_AUDIT_FAIL_MODE="closed")
    client = app.test_client()
    for _ in range(3):
        response = client.post("/transfer")
        assert response.status_code == 503
        assert response.headers["Retry-After"]
    assert app.view_calls == 0  # nothing unaudited happened
    processor = runtime.get_runtime().processor
    assert processor.stats.refused == 3
    # The operator fixes the disk: within a second the spool is retried and requests go through.
    (delivery.tmp_path / "not-a-dir").unlink()
    time.sleep(1.1)
    assert client.post("/transfer").status_code == 200
    assert app.view_calls == 1
    [record] = [r for r in delivery.records() if r["attributes"].get("http.request.method") == "POST"
                and r["attributes"].get("http.response.status_code") == 200]
    assert record["attributes"]["url.path"] == "/transfer"


def test_fail_open_serves_requests_and_counts_the_drops(delivery, app) -> None:
    _unwritable_spool(delivery)
    delivery.start(OTEL_AUDIT_FAIL_MODE="open")
    processor = runtime.get_runtime().processor
    dropped_at_start = processor.stats.dropped  # lifecycle records could not be spooled either
    assert dropped_at_start == 2
    client = app.test_client()
    for _ in range(5):
        assert client.post("/transfer").status_code == 200
    assert app.view_calls == 5
    assert processor.stats.dropped - dropped_at_start == 5
    assert processor.stats.dropped_by_reason["spool_unavailable"] == processor.stats.dropped
    assert processor.stats.refused == 0


@pytest.mark.parametrize("overflow", ["fail_closed", "block"])
def test_fail_closed_with_full_spool_and_fail_closed_overflow(delivery, app, overflow) -> None:
    """Spool over its limit (exporter down) + OTEL_AUDIT_OVERFLOW=fail_closed or block: the next
    request gets 503 (``block`` could time out after the view), and no admitted request lost its record."""
    delivery.start(OTEL_AUDIT_FAIL_MODE="closed", OTEL_AUDIT_OVERFLOW=overflow, OTEL_AUDIT_BLOCK_TIMEOUT_MS="100",
                   OTEL_AUDIT_SPOOL_MAX_BYTES="16KiB", OTEL_AUDIT_EXPORTER="otlp",
                   OTEL_EXPORTER_OTLP_LOGS_ENDPOINT="http://127.0.0.1:9/v1/logs", OTEL_EXPORTER_OTLP_LOGS_TIMEOUT="1",
                   OTEL_AUDIT_FLUSH_TIMEOUT_MS="100")
    client = app.test_client()
    statuses = [client.post("/transfer").status_code for _ in range(40)]
    assert statuses[0] == 200 and statuses[-1] == 503
    assert app.view_calls == statuses.count(200)
    processor = runtime.get_runtime().processor
    # Records that timed out waiting for room belong to refused requests (their 503s), never to a view that ran.
    assert processor.stats.dropped_by_reason["block_timeout"] <= statuses.count(503)


def test_a_required_record_that_fails_after_the_view_raises_audit_unavailable(delivery) -> None:
    """Admitted, then the spool breaks (an I/O error, not a full disk): the runtime raises
    AuditUnavailable for a required record, so the adapter can still answer 503; the loss is counted."""
    import os

    from otel_audit.errors import AuditUnavailable
    from otel_audit.event import AuditEvent

    delivery.start(OTEL_AUDIT_FAIL_MODE="closed", OTEL_AUDIT_POLICY="defaults: {required: true}\n")
    runtime.admit_request()  # the spool is fine: admitted
    processor = runtime.get_runtime().processor
    spool = processor._spool  # noqa: SLF001
    real_fd, spool._write_fd = spool._write_fd, os.open("/dev/null", os.O_RDONLY)  # noqa: SLF001 - EBADF on write
    try:
        with pytest.raises(AuditUnavailable):
            runtime.record_event(AuditEvent(category="data_modification", action="update", outcome="success"))
    finally:
        os.close(spool._write_fd)  # noqa: SLF001
        spool._write_fd = real_fd  # noqa: SLF001
    assert processor.losses.total == 1 and processor.stats.dropped_by_reason["spool_write_failed"] == 1
    # The spool works again: admission re-checks it now, not at the next once-a-second probe.
    assert not processor._healthy  # noqa: SLF001
    runtime.admit_request()
    assert processor._healthy  # noqa: SLF001


def test_the_disk_reservation_exists_in_closed_mode_only(delivery) -> None:
    delivery.start(OTEL_AUDIT_FAIL_MODE="closed", OTEL_AUDIT_SPOOL_RESERVE="128KiB")
    reserve = runtime.get_runtime().processor._spool.path / "reserve"  # noqa: SLF001
    assert reserve.stat().st_size == 128 << 10
    delivery.start(OTEL_AUDIT_FAIL_MODE="open")
    assert not (runtime.get_runtime().processor._spool.path / "reserve").exists()  # noqa: SLF001
