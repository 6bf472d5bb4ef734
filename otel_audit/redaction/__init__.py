"""Policy-driven redaction before export: key rules, validated detectors, HMAC pseudonyms, SQL and
URL sanitising. Runs inside the process, in the pipeline's Redact step, before any exporter sees a
record; and (``OTEL_AUDIT_REDACT_ALL_LOGS``, default ``secrets``) for every application log record too.

    redactor = Redactor.from_config(policy.redaction)      # the policy's ``redaction:`` section
    clean = redactor.redact_attributes(attributes)
    validate_config(section)                               # RedactionConfigError names the path

See docs/redaction.md.
"""

from __future__ import annotations

from otel_audit.redaction.detectors import BUILTIN_DETECTORS, Detector
from otel_audit.redaction.settings import RedactionConfigError, RedactionSettings, validate_config
from otel_audit.redaction.sql import sanitize_sql
from otel_audit.redaction.walk import RedactionResult, Redactor

__all__ = [
    "BUILTIN_DETECTORS",
    "Detector",
    "RedactionConfigError",
    "RedactionResult",
    "RedactionSettings",
    "Redactor",
    "sanitize_sql",
    "validate_config",
]
