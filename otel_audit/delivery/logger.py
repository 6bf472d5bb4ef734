"""The Logs API logger of otel-audit's own records: ``emit`` appends straight to the durable processor.

Beside the processor, not inside it: it holds nothing but the processor's two append methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otel_audit._logs_compat import Logger, LogRecord

if TYPE_CHECKING:
    from otel_audit.delivery.processor import DurableLogRecordProcessor


class DurableLogger(Logger):
    """The Logs API logger of otel-audit's own records: ``emit`` appends straight to the spool.

    The SDK's Logger would copy every record into a ReadWriteLogRecord and re-validate each
    attribute (BoundedAttributes) - a third of an audit record's cost - for attributes the pipeline
    built from typed fields and already redacted; the spool canonicalises them anyway.
    """

    def __init__(self, processor: "DurableLogRecordProcessor", name: str, version: str | None = None) -> None:
        super().__init__(name, version)
        self._append = processor.append
        # The pipeline's Emit step hands its draft to the processor itself: one call less per record.
        self.emit_draft = processor.append_draft

    def emit(self, record: Any = None, **fields: Any) -> None:  # noqa: D102 - the Logs API's emit
        self._append(record if record is not None else LogRecord(**fields))

    def enabled(self, *args: Any, **kwargs: Any) -> bool:
        return True
