"""otel-audit: audit logging as code for OpenTelemetry.

Public API: :func:`record`, :class:`audited`, and the event model types.
"""

__version__ = "0.1.0"

from otel_audit.event import Actor, AuditEvent, DbInfo, HttpInfo, Source, Target  # noqa: E402
from otel_audit.manual import audited, record  # noqa: E402

__all__ = ["Actor", "AuditEvent", "DbInfo", "HttpInfo", "Source", "Target", "audited", "record", "__version__"]
