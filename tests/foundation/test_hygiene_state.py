"""The test run keeps otel-audit's default state out of the developer's home directory."""

from __future__ import annotations

import os
from pathlib import Path

from otel_audit.config import AuditConfig


def test_default_spool_and_sink_live_under_the_runs_temporary_state_directory() -> None:
    state = Path(os.environ["XDG_STATE_HOME"])  # set by tests/conftest.py for the whole run
    assert not state.is_relative_to(Path.home() / ".local")
    config = AuditConfig.from_env({})  # nothing named: the defaults
    assert config.spool_dir.is_relative_to(state) and config.sink_path.is_relative_to(state)
