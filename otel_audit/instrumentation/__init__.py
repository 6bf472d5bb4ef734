"""Framework adapters. Each module is a thin ``BaseInstrumentor`` that translates framework facts into
:class:`~otel_audit.event.AuditEvent` objects; all decisions happen in the shared pipeline."""
