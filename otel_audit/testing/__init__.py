"""Test your audit trail as code: the ``audit_trail`` pytest fixture and its assertions.

The pytest plugin (:mod:`otel_audit_pytest`, registered under ``pytest11``) is
opt-in by fixture use: a suite that never asks for ``audit_trail`` is not touched. See
docs/testing.md. Importing this package is cheap: the trail machinery loads on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AuditAssertionError", "AuditTrail", "CaptureExporter"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from otel_audit.testing import trail

        return getattr(trail, name)
    raise AttributeError(f"module 'otel_audit.testing' has no attribute {name!r}")
