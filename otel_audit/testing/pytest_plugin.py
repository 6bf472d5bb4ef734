"""The pytest plugin's former home: the plugin is the top-level module :mod:`otel_audit_pytest`
(so loading it imports nothing of this package); this name stays for installs whose entry point
still points here and for ``-p otel_audit.testing.pytest_plugin``."""

from __future__ import annotations

from otel_audit_pytest import (  # noqa: F401
    audit_trail,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_report_header,
)
