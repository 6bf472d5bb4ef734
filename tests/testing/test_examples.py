"""The example apps' own audit test suites pass, run the way a user runs them (a subprocess
pytest with the plugin loaded from its entry point)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.procs import REPO, base_env


@pytest.mark.parametrize("example, passed", [("flask_app", 12), ("fastapi_app", 5)])
def test_example_suite_passes(example: str, passed: int, tmp_path) -> None:
    env = base_env()
    env["NOTES_DB"] = str(tmp_path / "notes.db")
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'fastapi.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", f"examples/{example}/tests", "-q", "-p", "no:cacheprovider"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{passed} passed" in result.stdout
