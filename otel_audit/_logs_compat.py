"""The only module that touches OpenTelemetry's still-underscore-private Logs API and SDK.

When the upstream modules are renamed (``opentelemetry._logs`` -> ``opentelemetry.logs``), this is
the one file to change.
"""

from __future__ import annotations

from opentelemetry._logs import Logger, LogRecord, SeverityNumber  # noqa: F401  (re-exported)
from opentelemetry.sdk._logs import (  # noqa: F401
    LoggerProvider,
    LogRecordProcessor,
    ReadableLogRecord,
    ReadWriteLogRecord,
)
from opentelemetry.sdk._logs.export import (  # noqa: F401
    BatchLogRecordProcessor,
    SimpleLogRecordProcessor,
)

try:  # SDK >= 1.39 names it LogRecordExporter; older releases LogExporter
    from opentelemetry.sdk._logs.export import LogRecordExporter as LogExporter  # noqa: F401
    from opentelemetry.sdk._logs.export import LogRecordExportResult as LogExportResult  # noqa: F401
except ImportError:  # pragma: no cover
    from opentelemetry.sdk._logs.export import LogExporter, LogExportResult  # noqa: F401
