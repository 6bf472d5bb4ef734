"""Lossless delivery and tamper evidence: durable spool, retrying exporter loop, fail-closed
admission, HMAC hash chain and ``otel-audit verify`` / ``status``. See docs/delivery.md."""

from __future__ import annotations

from typing import Any, Callable

from otel_audit.delivery.chain import ChainKey
from otel_audit.delivery.processor import (
    DeliveryOptions,
    DurableLogRecordProcessor,
    RecordNotDurable,
    current_processor,
)

__all__ = ["DeliveryOptions", "DurableLogRecordProcessor", "RecordNotDurable", "current_processor",
           "make_durable_processor"]


def make_durable_processor(config: Any, exporter_factory: Callable[[], Any], resource: Any, scope_name: str,
                           scope_version: str, first_exporter: Any = None) -> DurableLogRecordProcessor:
    """The processor for otel-audit's own provider, configured from :class:`~otel_audit.config.AuditConfig`."""
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from otel_audit.sink import JsonLinesExporter

    def prepared(exporter: Any) -> Any:
        if isinstance(exporter, JsonLinesExporter):
            exporter.ack_after_flush = True  # the sink file is the destination: fsync before deleting the spool
        return exporter

    options = DeliveryOptions(
        spool_dir=config.spool_dir,
        max_bytes=config.spool_max_bytes,
        overflow=config.overflow,
        block_timeout_s=config.block_timeout_ms / 1000,
        ack=config.spool_ack,
        shutdown_timeout_s=config.flush_timeout_ms / 1000,
    )
    return DurableLogRecordProcessor(
        lambda: prepared(exporter_factory()),
        options,
        ChainKey.from_config(config.chain_key, config.chain_key_id),
        resource,
        InstrumentationScope(scope_name, scope_version),
        first_exporter=prepared(first_exporter) if first_exporter is not None else None,
    )
