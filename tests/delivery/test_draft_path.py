"""The pipeline hands its record draft straight to the durable processor (no SDK LogRecord built
in between); the record that arrives is the one the Logs API path would have written."""

from __future__ import annotations

import copy

from opentelemetry import trace

import otel_audit
from otel_audit import runtime
from otel_audit._logs_compat import LogRecord
from otel_audit.delivery.verify import verify_files
from otel_audit.pipeline import Emit
from tests.delivery.conftest import CHAIN_KEY

# Differ between any two records by construction: when they were observed and where they sit in the chain.
PER_APPEND = {"observed_time_unix_nano"}
CHAIN_POSITION = {"audit.chain.seq", "audit.chain.prev", "audit.chain.mac"}


def test_the_draft_path_writes_what_the_logs_api_path_writes(delivery, monkeypatch) -> None:
    delivery.start(OTEL_AUDIT_CHAIN_KEY=CHAIN_KEY, OTEL_AUDIT_CHAIN_KEY_ID="k1")
    rt = runtime.get_runtime()
    emit = rt.pipeline.steps[-1]
    assert isinstance(emit, Emit) and emit.emit_draft is not None, "the durable logger takes drafts directly"

    drafts = []
    monkeypatch.setattr(emit, "emit_draft", lambda draft, inner=emit.emit_draft: (drafts.append(copy.deepcopy(draft)),
                                                                                   inner(draft))[1])
    otel_audit.record("data_modification", "update", outcome="failure", attributes={"app.n": 7})
    assert len(drafts) == 1
    draft = drafts[0]
    # The same draft again, through the Logs API's emit with an SDK LogRecord.
    rt.pipeline.steps[-1].logger.emit(LogRecord(
        timestamp=draft.timestamp, trace_id=draft.trace_id, span_id=draft.span_id,
        trace_flags=trace.TraceFlags(draft.trace_flags), severity_number=draft.severity_number,
        severity_text=draft.severity_text, body=draft.body, attributes=draft.attributes, event_name=draft.event_name))

    by_draft, by_log_record = delivery.records()[-2:]
    assert by_draft["event_name"] == "audit.data_modification.update"
    assert by_draft["severity_number"] == draft.severity_number.value and by_draft["severity_text"] == "WARN"
    assert by_draft["observed_time_unix_nano"] >= by_draft["time_unix_nano"] > 0
    for key in PER_APPEND:
        by_draft.pop(key), by_log_record.pop(key)
    for key in CHAIN_POSITION:
        by_draft["attributes"].pop(key), by_log_record["attributes"].pop(key)
    assert by_draft == by_log_record
    rt.provider.force_flush()
    report = verify_files([str(delivery.sink)], {"k1": CHAIN_KEY.encode()})
    assert report.ok, report
