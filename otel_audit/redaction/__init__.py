"""Policy-driven redaction before export: key rules, validated detectors, HMAC pseudonyms, SQL and
URL sanitising. Runs inside the process, in the pipeline's Redact step, before any exporter sees a
record; and (``OTEL_AUDIT_REDACT_ALL_LOGS``, default ``secrets``) for every application log record too.

    redactor = Redactor.from_config(policy.redaction)      # the policy's ``redaction:`` section
    clean = redactor.redact_attributes(attributes)
    validate_config(section)                               # RedactionConfigError names the path

The room: ``walk`` (the :class:`Redactor`: a record's attributes and body, values, JSON and
form bodies, key rules), ``actions`` (what replaces a value or a found span), ``text_scan`` (the
detectors over one text, native or Python) and ``scan_plan`` (the detectors arranged for it, and
the native scanner), ``pseudonyms`` (hmac keys, :func:`~otel_audit.redaction.pseudonyms.pseudonymise`);
as data: ``keys`` (the one secret-name rule, protected bookkeeping), ``detectors``, ``validators``,
``settings`` (the policy section), ``sql``, ``linear`` (policy regexes on RE2); ``logs`` (the
application-log processor) and ``leak_finder`` (the tests' secret finder, ``assert_no_secrets``).

It may import ``config`` (every environment read), ``errors``, ``attributes`` (level names) and
``_logs_compat``; never ``policy`` or ``instrumentation``: the policy hands it its section.

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
