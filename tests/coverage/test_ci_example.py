"""examples/ci/audit-checks.sh runs green on the Flask example: golden cases, coverage gate, tests."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.procs import REPO, base_env


def test_ci_script_passes_on_the_flask_example(tmp_path) -> None:
    env = base_env(TMPDIR=str(tmp_path))
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    result = subprocess.run(["sh", "examples/ci/audit-checks.sh"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "5/5 cases passed" in result.stdout
    assert "OK: every critical route and table is covered by an explicit rule" in result.stdout
    assert "12 passed" in result.stdout
    assert (tmp_path / "audit-coverage.json").exists() and not (REPO / "audit-coverage.json").exists()
