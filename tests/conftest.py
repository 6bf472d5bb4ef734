"""Session-wide hygiene: otel-audit's default state directory (the embedded sink's file and the
spool) is a temporary directory for the whole run, not the developer's ``~/.local/state``.

Tests that start a runtime without naming a spool or sink (and the servers they launch, which
inherit the environment) would otherwise leave a spool root per destination behind there, run
after run. Tests that care about a location still set ``OTEL_AUDIT_SPOOL_DIR`` themselves.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_STATE_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    state = tempfile.mkdtemp(prefix="otel-audit-tests-state-")
    config.stash[_STATE_KEY] = state
    os.environ["XDG_STATE_HOME"] = state


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE_KEY, None)
    if state is not None:
        shutil.rmtree(state, ignore_errors=True)
