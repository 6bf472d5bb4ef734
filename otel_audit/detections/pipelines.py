"""One pySigma processing pipeline per backend: how the rules' OTel attribute names look after
the shipped Collector configs (collector-config/), so a converted rule runs unmodified on what
otel-audit sends.

* Splunk (splunk.yaml, HEC): attributes are indexed fields under their OTel names; every audit
  record has sourcetype ``otel:audit:<category>``.
* Loki (loki.yaml, native OTLP): ``audit.category`` and ``audit.outcome`` are index labels, every
  other attribute structured metadata; Loki spells names with ``_`` for each non-alphanumeric.
  No parser is needed (structured metadata is filterable as it is). Metadata values are text, so
  a rule's ``true`` is matched as ``"true"`` (pySigma's Loki backend has no booleans).
* Datadog (datadog.yaml / datadog-otlp.yaml): attributes are searched as ``@<name>``; the audit
  stream has ``source:otel_audit``.
* SQLite (``detections test``): one column per attribute name, as recorded.
"""

from __future__ import annotations

import re
from typing import Any

SPLUNK_SOURCETYPE = "otel:audit:*"
LOKI_SELECTOR = '{audit_category=~".+"}'  # only audit streams carry this label (loki.yaml)
LOKI_LABELS = ("audit.category", "audit.outcome")  # loki.yaml's groupbyattrs: index labels
DATADOG_SOURCE = "source:otel_audit"

BACKENDS = ("splunk", "loki", "datadog")


def loki_name(field: str) -> str:
    """Loki's spelling of an OTLP attribute name (structured metadata and labels alike)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", field)


def backend_field(backend: str, field: str) -> str:
    """How one rule field is named in a backend's query."""
    if backend == "loki":
        return loki_name(field)
    if backend == "datadog":
        return "@" + field
    return field


def _booleans_as_text() -> Any:
    """A transformation writing a rule's boolean values as the text Loki holds (``true``)."""
    from sigma.processing.transformations.base import ValueTransformation
    from sigma.types import SigmaBool, SigmaString

    class BooleansAsText(ValueTransformation):
        # Unannotated on purpose: pySigma picks the values it passes by the annotation of ``val``.
        def apply_value(self, field, val):  # type: ignore[no-untyped-def]
            return SigmaString("true" if val.boolean else "false") if isinstance(val, SigmaBool) else None

    return BooleansAsText()


def pipeline(backend: str) -> Any:
    """The processing pipeline for ``backend`` (splunk, loki, datadog, sqlite)."""
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline

    items: list[Any] = []
    if backend == "splunk":
        from sigma.processing.transformations import AddConditionTransformation

        items.append(ProcessingItem(AddConditionTransformation({"sourcetype": SPLUNK_SOURCETYPE}),
                                    identifier="otel_audit_sourcetype"))
    elif backend == "loki":
        from sigma.pipelines.loki.loki import LokiCustomAttributes, SetCustomAttributeTransformation

        items.append(ProcessingItem(SetCustomAttributeTransformation(LokiCustomAttributes.PARSER.value, "|"),
                                    identifier="otel_audit_structured_metadata"))
        items.append(ProcessingItem(SetCustomAttributeTransformation(LokiCustomAttributes.LOGSOURCE_SELECTION.value,
                                                                     LOKI_SELECTOR), identifier="otel_audit_streams"))
        items.append(ProcessingItem(_booleans_as_text(), identifier="otel_audit_booleans_as_text"))
    elif backend == "datadog":
        from sigma.processing.transformations import AddFieldnamePrefixTransformation

        items.append(ProcessingItem(AddFieldnamePrefixTransformation("@"), identifier="otel_audit_attributes"))
    elif backend != "sqlite":
        raise ValueError(f"unknown backend {backend!r}")
    return ProcessingPipeline(name=f"otel-audit {backend}", priority=20, items=items)
