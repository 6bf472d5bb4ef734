"""Nothing is lost: a receiver that is down, then refusing, then up gets every record (by event id);
spooled records live on disk, not in memory; fork() neither duplicates nor loses the spool."""

from __future__ import annotations

import http.server
import json
import os
import time
from pathlib import Path

import pytest

import otel_audit
from otel_audit import runtime
from otel_audit.delivery.status import spool_status
from otel_audit.delivery.verify import verify_files
from tests.support import otlp_receiver
from tests.support.otlp_receiver import OtlpReceiver


def _event_ids(records) -> list[str]:
    return [r.attributes["audit.event_id"] for r in records if r.event_name == "audit.data_access.read"]


def _receiver_on(port: int, monkeypatch: pytest.MonkeyPatch) -> OtlpReceiver:
    """An OtlpReceiver bound to a given port (the exporter's endpoint is fixed before it starts)."""

    class FixedPort(http.server.ThreadingHTTPServer):
        def __init__(self, address, handler):
            super().__init__((address[0], port), handler)

    monkeypatch.setattr(otlp_receiver, "ThreadingHTTPServer", FixedPort)
    return OtlpReceiver()


def test_receiver_down_then_refusing_then_up_gets_every_record(delivery, monkeypatch) -> None:
    placeholder = OtlpReceiver()  # reserve a port, then free it: nothing listens there
    port = placeholder.port
    placeholder.server.server_close()
    delivery.start(OTEL_AUDIT_EXPORTER="otlp", OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=f"http://127.0.0.1:{port}/v1/logs",
                   OTEL_EXPORTER_OTLP_LOGS_TIMEOUT="1", OTEL_AUDIT_SPOOL_ACK="write")
    processor = runtime.get_runtime().processor
    sent = [otel_audit.record("data_access", "read", attributes={"app.n": i}).event_id for i in range(300)]
    # The exporter's own retries take up to its 1 s timeout before an attempt counts as failed:
    # wait for the first failure rather than a fixed second (a loaded CI machine took longer).
    deadline = time.monotonic() + 15
    while processor.stats.failed < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processor.stats.exported == 0 and processor.stats.failed >= 1  # really down, and noticed
    status = spool_status(delivery.spool)
    assert status["records_pending"] >= 300
    with _receiver_on(port, monkeypatch) as receiver:
        receiver.fail_with = 503  # up but refusing: still nothing may be deleted
        sent += [otel_audit.record("data_access", "read", attributes={"app.n": i}).event_id for i in range(300, 400)]
        time.sleep(1.5)
        assert processor.stats.exported == 0
        receiver.fail_with = None
        records = receiver.wait_for(lambda recs: set(sent) <= set(_event_ids(recs)), timeout=60)
    assert set(_event_ids(records)) == set(sent)
    assert processor.stats.dropped == 0 and processor.stats.retried > 0
    assert processor.force_flush(5000)
    assert spool_status(delivery.spool)["records_pending"] == 0


def test_fork_gives_the_child_its_own_spool_and_chain(delivery) -> None:
    delivery.start(OTEL_AUDIT_CHAIN_KEY="fork-test-key-0123456789")
    parent_ids = [otel_audit.record("data_access", "read").event_id for _ in range(3)]
    parent_chain = runtime.get_runtime().processor.chain.chain_id
    pid = os.fork()
    if pid == 0:  # child: record, shut down cleanly, exit without pytest's teardown
        code = 1
        try:
            for _ in range(4):
                otel_audit.record("data_access", "read", attributes={"app.child": True})
            runtime.get_runtime().shutdown()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    parent_ids += [otel_audit.record("data_access", "read").event_id for _ in range(3)]
    runtime.reset_for_tests()
    records = [json.loads(line) for line in delivery.sink.read_text().splitlines()]
    reads = [r for r in records if r["event_name"] == "audit.data_access.read"]
    ids = [r["attributes"]["audit.event_id"] for r in reads]
    assert len(ids) == len(set(ids)) == 10  # nothing duplicated, nothing lost
    assert set(parent_ids) <= set(ids)
    child = [r for r in reads if r["attributes"].get("app.child")]
    child_chain = child[0]["attributes"]["audit.chain.id"]
    assert child_chain != parent_chain
    first_child = min((r for r in records if r["attributes"]["audit.chain.id"] == child_chain),
                      key=lambda r: r["attributes"]["audit.chain.seq"])
    assert first_child["attributes"]["audit.chain.forked_from"].startswith(parent_chain + ":")
    assert verify_files([str(delivery.sink)], {"default": b"fork-test-key-0123456789"}).ok
    assert not [p for p in Path(delivery.spool).rglob("p*") if p.is_dir()]  # both cleaned up after themselves


def test_overflow_drop_newest_and_drop_oldest_are_counted(delivery) -> None:
    placeholder = OtlpReceiver()
    placeholder.server.server_close()
    common = dict(OTEL_AUDIT_EXPORTER="otlp", OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=f"{placeholder.endpoint}/v1/logs",
                  OTEL_EXPORTER_OTLP_LOGS_TIMEOUT="1", OTEL_AUDIT_SPOOL_MAX_BYTES="64KiB", OTEL_AUDIT_SPOOL_ACK="write",
                  OTEL_AUDIT_FLUSH_TIMEOUT_MS="100")
    delivery.start(OTEL_AUDIT_OVERFLOW="drop_newest", **common)
    processor = runtime.get_runtime().processor
    results = [otel_audit.record("data_access", "read") for _ in range(200)]
    assert results and processor.stats.dropped > 0
    assert processor.stats.dropped_by_reason["overflow"] == processor.stats.dropped
    assert processor.stats.spooled + processor.stats.dropped == processor.stats.emitted
    assert processor.spool_status()["bytes"] <= 64 * 1024

    delivery.start(OTEL_AUDIT_OVERFLOW="drop_oldest", OTEL_AUDIT_SPOOL_DIR=str(delivery.tmp_path / "s2"), **common)
    processor = runtime.get_runtime().processor
    for _ in range(200):
        otel_audit.record("data_access", "read")
    assert processor.stats.dropped_by_reason["overflow_evicted"] > 0
    assert processor.spool_status()["bytes"] <= 64 * 1024

    delivery.start(OTEL_AUDIT_OVERFLOW="block", OTEL_AUDIT_BLOCK_TIMEOUT_MS="200",
                   OTEL_AUDIT_SPOOL_DIR=str(delivery.tmp_path / "s3"), **common)
    processor = runtime.get_runtime().processor
    for _ in range(200):
        before = time.monotonic()
        otel_audit.record("data_access", "read")
        if processor.stats.dropped_by_reason["block_timeout"]:
            break
    assert processor.stats.dropped_by_reason["block_timeout"] == 1
    assert time.monotonic() - before >= 0.2  # it waited for room before giving up
