"""The Go unit tests of our own Collector components (collector-config/components) run with the suite,
so a change that breaks one fails CI here and not first inside a running Collector."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

COMPONENTS = Path(__file__).resolve().parents[2] / "collector-config" / "components"


def _go_env() -> dict[str, str]:
    """The Go caches .ci/build-collector.sh fills, so the tests reuse what the Collector build fetched."""
    root = Path(os.environ.get("OTEL_AUDIT_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "otel-audit")
    return dict(os.environ, GOCACHE=os.environ.get("OTEL_AUDIT_GOCACHE", str(root / "go" / "build")),
                GOMODCACHE=os.environ.get("OTEL_AUDIT_GOMODCACHE", str(root / "go" / "mod")),
                GOFLAGS="-modcacherw -buildvcs=false")


@pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed: the components' Go tests cannot run")
def test_go_tests_of_the_collector_components_pass() -> None:
    result = subprocess.run(["go", "test", "-count=1", "./..."], cwd=COMPONENTS, env=_go_env(), capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "ok  \tgithub.com/otel-audit/otelcol-audit/components/refusal" in result.stdout  # it did run them
