"""The pipeline's default steps are one named list (runtime.default_steps), and each step reads only
what the event brings or an earlier step wrote, as it declares (pipeline.check_steps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_audit import pipeline, runtime
from otel_audit.event import AuditEvent
from otel_audit.pipeline import DECISION, FACTS, RECORD, Decide, Emit, Enrich, Redact, check_steps, contract


class _Untouchable:
    """Stands in for a slot a step declares it does not read: any use of it fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"read an undeclared slot (.{name})")

    def __bool__(self) -> bool:
        raise AssertionError("read an undeclared slot")


@pytest.fixture
def started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OTEL_AUDIT_SINK_PATH", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("OTEL_AUDIT_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("OTEL_AUDIT_QUIET", "1")
    runtime.reset_for_tests()
    yield runtime.start()
    runtime.reset_for_tests()


def test_the_default_steps_are_the_named_list_in_order_and_check(started) -> None:
    steps = started.pipeline.steps
    assert [type(step).__name__ for step in steps] == ["Decide", "Enrich", "MarkIncomplete", "Redact", "Emit"]
    check_steps(steps)


def test_every_step_of_the_pipeline_module_declares_what_it_reads_and_writes() -> None:
    for step in (Decide, Enrich, Redact, Emit):
        assert isinstance(step.reads, tuple) and isinstance(step.writes, tuple), step
        assert set(step.reads) | set(step.writes) <= {FACTS, DECISION, RECORD}, step
    assert contract(object()) == pipeline.UNDECLARED  # an undeclared step needs everything


def test_a_step_before_what_it_reads_is_refused(started) -> None:
    decide, enrich, mark, redact, emit = started.pipeline.steps
    with pytest.raises(ValueError, match=r"step 0 \(Emit\) reads record"):
        check_steps([emit, decide, enrich])
    with pytest.raises(ValueError, match=r"step 0 \(Enrich\) reads decision"):
        check_steps([enrich, decide])
    with pytest.raises(ValueError, match=r"step 1 \(MarkIncomplete\)"):  # undeclared: only after a draft
        check_steps([decide, mark, enrich])


def test_each_step_reads_no_slot_it_does_not_declare(started) -> None:
    """Run a real event through the default steps; before each, every slot the step does not declare
    reading (and that it does not write) is replaced by a stand-in that fails on any use."""
    event = AuditEvent(category="data_modification", action="update", outcome="success", attributes={"app.n": 1})
    for step in started.pipeline.steps:
        reads, writes = contract(step)
        if (reads, writes) == pipeline.UNDECLARED:
            event = step(event)
            continue
        saved = {slot: getattr(event, slot) for slot in (DECISION, RECORD)}
        for slot in (DECISION, RECORD):
            if slot not in reads and slot not in writes:
                setattr(event, slot, _Untouchable())
        event = step(event)
        assert event is not None, step
        for slot, value in saved.items():
            if slot not in writes:
                setattr(event, slot, value)
    assert event.record.attributes["audit.chain.id"]  # emitted: the processor stamped its chain


def _drafted(started) -> pipeline.RecordDraft:
    event = AuditEvent(category="data_access", action="read_resource", outcome="success")
    steps = started.pipeline.steps
    return steps[1](steps[0](event)).record


def test_enrich_takes_the_trace_context_of_the_current_span_and_none_without_one(started) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    assert (_drafted(started).trace_id, _drafted(started).span_id) == (0, 0)
    span = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1)))
    with trace.use_span(span):
        draft = _drafted(started)
    assert (draft.trace_id, draft.span_id, draft.trace_flags) == (0xABC, 0xDEF, 1)
    with trace.use_span(trace.INVALID_SPAN):  # a span that is set but not valid names no trace
        assert _drafted(started).trace_id == 0


def test_a_runtime_context_other_than_the_sdks_is_read_through_the_public_api(monkeypatch) -> None:
    from opentelemetry import context as otel_context

    class Elsewhere:  # e.g. a runtime context chosen by OTEL_PYTHON_CONTEXT
        pass

    monkeypatch.setattr(otel_context, "_RUNTIME_CONTEXT", Elsewhere())
    assert pipeline._span_lookup() is pipeline._public_span_context
