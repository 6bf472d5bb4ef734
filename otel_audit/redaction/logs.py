"""``OTEL_AUDIT_REDACT_ALL_LOGS``: redaction for every application log record (default ``secrets``).

``secrets`` (:func:`secrets_redactor`): the secret-class detectors (credentials, tokens, keys, URL
credentials, signed URL parameters) and card numbers, and the built-in key rules, but none of the
PII pseudonyms (e-mail, IP, IBAN, SSN), which would change ordinary log lines. ``all``: the audit
policy's own redactor.

contrib's logging instrumentation copies ``extra={...}`` fields into log attributes unredacted, so
``log.info("login", extra={"password": pw})`` would reach the exporter as-is. We put redaction in
front of every processor of the process's global SDK ``LoggerProvider``.

How (SDK 1.45): every ``Logger`` keeps a reference to its provider's multi-processor
(``provider._multi_log_record_processor``, synchronous or concurrent) and calls its ``on_emit``
with the one mutable ``ReadWriteLogRecord``. Replacing that object's ``on_emit`` on the instance
makes redaction run first for existing and future loggers and for processors added later. If the
global provider is not set yet, we install when it is (``set_logger_provider`` goes through
``_internal._set_logger_provider``).
"""

from __future__ import annotations

import threading
from typing import Any

from otel_audit._logs_compat import LogRecordProcessor
from otel_audit.errors import containment

_MARK = "_otel_audit_redaction"
_lock = threading.Lock()
_pending: list[Any] = []  # redactors waiting for a global provider


def secrets_redactor(environ: Any = None) -> Any:
    """The ``secrets`` redactor: the detectors ``assert_no_secrets`` judges by (every ``secret``
    detector and card numbers), all masking, plus the built-in key rules. Session ids keep their
    ``hmac`` pseudonym when ``OTEL_AUDIT_HMAC_KEY`` is set, else are masked (no per-process key
    is announced for app logs)."""
    from otel_audit.redaction.detectors import BUILTIN_DETECTORS, SECRET_CLASS
    from otel_audit.redaction.walk import Redactor

    actions = {d.name: ("mask" if d.name in SECRET_CLASS else "off") for d in BUILTIN_DETECTORS}
    return Redactor.from_config({"detectors": actions, "hmac": {"missing_key": "mask"}}, environ=environ)


class RedactingLogRecordProcessor(LogRecordProcessor):
    """Redacts attributes and body in place; adds ``audit.redaction.*`` only when something changed."""

    def __init__(self, redactor: Any) -> None:
        self.redactor = redactor

    def on_emit(self, log_record: Any) -> None:
        try:
            record = log_record.log_record
            attributes = record.attributes
            result = self.redactor.redact(
                dict(attributes) if attributes else {}, record.body, audit_record=False
            )
            if not result.count:
                return
            cleaned = result.attributes
            cleaned.update(result.summary())
            if attributes is not None and hasattr(attributes, "clear"):
                for key in list(attributes):
                    if key not in cleaned:
                        del attributes[key]
                for key, value in cleaned.items():
                    if key not in attributes or attributes[key] is not value:
                        attributes[key] = value
            else:
                record.attributes = cleaned
            record.body = result.body
        except Exception as exc:  # noqa: BLE001 - an app log must never fail because of us
            containment.record("log redaction", exc)

    def emit(self, log_record: Any) -> None:  # older SDK name
        self.on_emit(log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def install_on_provider(provider: Any, redactor: Any) -> bool:
    """Run redaction before every other processor of an SDK ``provider``. True if installed now."""
    multi = getattr(provider, "_multi_log_record_processor", None)
    if multi is None or not hasattr(multi, "on_emit"):
        return False
    with _lock:
        if getattr(multi, _MARK, None) is not None:
            return True
        processor = RedactingLogRecordProcessor(redactor)
        downstream = multi.on_emit

        def on_emit(log_record: Any) -> None:
            processor.on_emit(log_record)
            downstream(log_record)

        multi.on_emit = on_emit
        setattr(multi, _MARK, processor)
    return True


def installed_processor(provider: Any) -> RedactingLogRecordProcessor | None:
    return getattr(getattr(provider, "_multi_log_record_processor", None), _MARK, None)


def install_all_logs_redaction(redactor: Any) -> bool:
    """Install on the global provider, now or as soon as one is set. True if installed now."""
    from opentelemetry._logs import _internal as logs_api

    provider = logs_api.get_logger_provider()
    if install_on_provider(provider, redactor):
        return True
    with _lock:
        _pending.append(redactor)
        original = logs_api._set_logger_provider
        if getattr(original, _MARK, False):
            return False

        def _set_logger_provider(logger_provider: Any, log: bool) -> None:
            original(logger_provider, log)
            try:
                current = logs_api.get_logger_provider()
                with _lock:
                    waiting = list(_pending)
                    _pending.clear()
                for pending in waiting[:1]:
                    install_on_provider(current, pending)
            except Exception as exc:  # noqa: BLE001
                containment.record("log redaction install", exc)

        setattr(_set_logger_provider, _MARK, True)
        logs_api._set_logger_provider = _set_logger_provider
    return False
