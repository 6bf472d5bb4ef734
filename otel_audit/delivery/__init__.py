"""Lossless delivery and tamper evidence: otel-audit's records from the Emit step to the exporter.

What this room is for: one state machine, :class:`~otel_audit.delivery.processor.DurableLogRecordProcessor`
(spool first, export later, delete only what was acknowledged; fail-closed admission; the hash
chain sealed in append order; loss declarations and checkpoints), with what it is built from
beside it, and the read side of its files (``otel-audit verify`` / ``status``). See docs/delivery.md.

* ``processor.py``  the state machine: the caller's append, admission and overflow, the exporter
                    thread's loop; fork, flush and shutdown
* ``commit.py``     its group commit (sealing in queue order, one write per batch, background
                    fsync), mixed into the processor: same state, its own file
* ``logger.py``     ``DurableLogger``, the Logs API logger whose ``emit`` appends to the processor
* ``sink.py``       the embedded JSON-lines sink (the exporter when no OTLP endpoint is configured)
* ``sender.py``     the exporter thread's step: one batch to the exporter, retried until acknowledged
* ``adoption.py``   taking over the spools of dead processes (interrupted intents, chain ends, losses)
* ``options.py``    ``DeliveryOptions`` and ``RecordNotDurable``
* ``configure.py``  the processor for a configured destination (which spool, options, exporter)
* ``spool.py``, ``frames.py``, ``positions.py``, ``canonical.py``, ``chain.py``, ``intents.py``,
  ``loss.py``, ``reserve.py``, ``telemetry.py``: the spool's files, frame payloads, chain math,
  intents, the loss ledger, the fail-closed reservation, the metrics
* ``verify.py``, ``status.py``, ``cli.py``: reading spools and trails back (``otel-audit verify``,
  ``status``)

What it may import: the OpenTelemetry SDK, :mod:`otel_audit._logs_compat`, :mod:`otel_audit.errors`
and :mod:`otel_audit.config`; nothing of the pipeline, the policy, redaction, the runtime or the
adapters (the runtime wires the processor's hooks to its pipeline). Within the package the
processor imports its parts, never the other way round.
"""

from __future__ import annotations

from otel_audit.delivery.configure import (
    destination_info,
    destination_key,
    destination_spool_dir,
    make_durable_processor,
)
from otel_audit.delivery.logger import DurableLogger
from otel_audit.delivery.options import DeliveryOptions, RecordNotDurable
from otel_audit.delivery.processor import DurableLogRecordProcessor, current_processor

__all__ = ["DeliveryOptions", "destination_info", "destination_key", "destination_spool_dir",
           "DurableLogger", "DurableLogRecordProcessor", "RecordNotDurable", "current_processor",
           "make_durable_processor"]
