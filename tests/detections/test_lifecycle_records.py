"""The tampering rule on the records the runtime itself writes: a loss the spool noted is
declared in the chain (``audit.audit_system.records_lost``, by the real processor and runtime,
with the next durable record) and fires otel_audit_audit_tampering; the ordinary lifecycle
records (start, policy loaded, checkpoint) fire nothing."""

from __future__ import annotations

import otel_audit
import pytest

pytest.importorskip("sigma")


def test_a_declared_loss_fires_tampering(audit_trail) -> None:
    audit_trail.runtime.processor.losses.note("spool_write_failed", 3)  # what a failed spool write notes
    otel_audit.record("configuration", "config_change")  # the next durable record declares the gap

    audit_trail.assert_audited(event="audit.audit_system.records_lost")
    alert = audit_trail.assert_detects("audit_tampering")
    assert alert.level == "critical" and len(alert.event_ids) == 1


def test_ordinary_lifecycle_records_fire_nothing(audit_trail) -> None:
    audit_trail.runtime.checkpoint()
    otel_audit.record("configuration", "config_change")

    names = {r["event_name"] for r in audit_trail.all_records}
    assert {"audit.audit_system.start", "audit.audit_system.policy_loaded", "audit.audit_system.checkpoint"} <= names
    audit_trail.assert_no_detections()
