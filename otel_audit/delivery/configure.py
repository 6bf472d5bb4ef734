"""The durable processor for a configured destination: which spool, which options, which exporter tweaks.

Reads :class:`~otel_audit.config.AuditConfig` (and, through :mod:`otel_audit.config`, the OTLP
endpoint variables); builds a :class:`~otel_audit.delivery.processor.DurableLogRecordProcessor`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_audit.config import otlp_endpoint_as_set, otlp_transport
from otel_audit.delivery.chain import ChainKey
from otel_audit.delivery.options import DeliveryOptions
from otel_audit.delivery.processor import DurableLogRecordProcessor
from otel_audit.delivery.sink import JsonLinesExporter


def destination_spool_dir(root: Path, destination: str) -> Path:
    """One spool per destination under the spool root: a dead process's records are always sent
    where that process would have sent them, never to another app's sink or endpoint."""
    kind = destination.split(":", 1)[0]
    digest = hashlib.sha256(destination.encode()).hexdigest()[:12]
    return Path(root) / f"{kind}-{digest}"


def destination_key(config: Any) -> str:
    """Identifies where records go: ``otlp:<endpoint>``, ``sink:<path>`` or ``console:``."""
    if config.wants_otlp():
        return f"otlp:{otlp_endpoint_as_set()}"
    if config.exporter == "console":
        return "console:"
    return f"sink:{Path(config.sink_path).expanduser().resolve()}"


def destination_info(config: Any) -> dict[str, str]:
    """What ``otel-audit status`` shows for a destination: exporter, and for OTLP its protocol and endpoint."""
    if config.wants_otlp():
        return otlp_transport().as_dict()
    if config.exporter == "console":
        return {"exporter": "console"}
    return {"exporter": "sink", "path": str(Path(config.sink_path).expanduser().resolve())}


def make_durable_processor(config: Any, exporter_factory: Callable[[], Any], resource: Any, scope_name: str,
                           scope_version: str, first_exporter: Any = None) -> DurableLogRecordProcessor:
    """The processor for otel-audit's own provider, configured from :class:`~otel_audit.config.AuditConfig`."""
    destination = destination_key(config)

    def prepared(exporter: Any) -> Any:
        if isinstance(exporter, JsonLinesExporter):
            exporter.ack_after_flush = True  # the sink file is the destination: fsync before deleting the spool
        return exporter

    options = DeliveryOptions(
        spool_dir=destination_spool_dir(config.spool_dir, destination),
        max_bytes=config.spool_max_bytes,
        overflow=config.overflow,
        block_timeout_s=config.block_timeout_ms / 1000,
        ack=config.spool_ack,
        shutdown_timeout_s=config.flush_timeout_ms / 1000,
        export_linger_s=config.export_delay_ms / 1000,
        reserve_bytes=config.spool_reserve if config.fail_mode == "closed" else 0,
        checkpoint_interval_s=config.checkpoint_interval_s,
        checkpoint_records=config.checkpoint_records,
        checkpoint_path=config.checkpoint_path,
        destination=destination_info(config),
    )
    return DurableLogRecordProcessor(
        lambda: prepared(exporter_factory()),
        options,
        ChainKey.from_config(config.chain_key, config.chain_key_id),
        resource,
        InstrumentationScope(scope_name, scope_version),
        first_exporter=prepared(first_exporter) if first_exporter is not None else None,
    )
