"""The pytest plugin's former home: the plugin is the top-level module :mod:`otel_audit_pytest`
(so loading it imports nothing of this package); this name stays for installs whose entry point
still points here (an editable install made before the move) and for
``-p otel_audit.testing.pytest_plugin``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _plugin_module():
    """``otel_audit_pytest``; an editable install made before it existed cannot import it by
    name, so it is loaded from the file next to the package."""
    try:
        import otel_audit_pytest
    except ImportError:
        path = Path(__file__).resolve().parents[2] / "otel_audit_pytest.py"
        spec = importlib.util.spec_from_file_location("otel_audit_pytest", path)
        if spec is None or spec.loader is None:
            raise
        otel_audit_pytest = importlib.util.module_from_spec(spec)
        sys.modules["otel_audit_pytest"] = otel_audit_pytest
        spec.loader.exec_module(otel_audit_pytest)
    return otel_audit_pytest


_plugin = _plugin_module()
audit_trail = _plugin.audit_trail
pytest_addoption = _plugin.pytest_addoption
pytest_collection_modifyitems = _plugin.pytest_collection_modifyitems
pytest_configure = _plugin.pytest_configure
pytest_report_header = _plugin.pytest_report_header
