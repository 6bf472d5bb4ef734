"""otel-audit: audit logging as code for OpenTelemetry.

Public API: :func:`record`, :class:`audited`, and the event model types. Imported lazily, so
``import otel_audit`` (by the pytest plugin, the CLI, an entry point) does not load the OTel SDK
until something actually records.

PYTEST_DONT_REWRITE: the launcher imports this package before pytest starts; the marker tells
pytest's assertion rewriting not to warn that it came too late (a suite with ``filterwarnings =
["error"]`` would not start). Only this file opts out; the plugin module is still rewritten.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Actor": "otel_audit.event",
    "AuditEvent": "otel_audit.event",
    "DbInfo": "otel_audit.event",
    "HttpInfo": "otel_audit.event",
    "Source": "otel_audit.event",
    "Target": "otel_audit.event",
    "audited": "otel_audit.manual",
    "record": "otel_audit.manual",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_audit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
