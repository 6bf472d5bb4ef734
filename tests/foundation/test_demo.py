"""The main job: ``otel-audit demo`` runs the example under the launcher and prints the trail."""

from __future__ import annotations

import subprocess
import sys

from tests.support.procs import REPO, base_env


def test_demo_prints_the_audit_trail(tmp_path) -> None:
    sink = tmp_path / "demo.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "otel_audit.cli", "demo", "--sink", str(sink)],
        cwd=tmp_path, env=base_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "302  alice: login" in out and "403  alice: open admin page" in out
    table = out.split("audit trail from the embedded sink", 1)[1]
    for expected in ("audit.audit_system.start", "audit.authentication.login_failed", "audit.authentication.login",
                     "audit.data_access.export", "audit.audit_system.stop"):
        assert expected in table
    assert "denied" in table and "GET /admin/users" in table
    assert sink.exists() and f"{sink}" in out
