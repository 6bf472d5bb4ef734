"""Never break the host's test suite: an app's own strict suite runs under the launcher with
auditing on, and a broken otel-audit install degrades pytest to a notice, never a crash.

Both run pytest in a real subprocess: the first under ``opentelemetry-instrument`` (which imports
otel_audit before pytest starts: the PytestAssertRewriteWarning case), the second in an
interpreter that sees only pytest and a deliberately broken copy of otel-audit, installed with the
entry points this repository's pyproject.toml declares.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.procs import REPO, base_env, launcher

STRICT_APP = REPO / "examples" / "flask_strict"


def test_strict_suite_runs_under_the_launcher_with_auditing_on(tmp_path: Path) -> None:
    sink = tmp_path / "audit.jsonl"
    # FastAPI is installed here for other tests; a Flask app's environment would not have it, and
    # contrib's FastAPI instrumentor imports anyio (itself a pytest plugin) at launch.
    env = base_env(OTEL_AUDIT_SINK_PATH=str(sink), OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="fastapi,otel_audit_fastapi")
    env["PYTHONPATH"] = f"{STRICT_APP}:{env['PYTHONPATH']}"
    result = subprocess.run([launcher(), sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=STRICT_APP, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "3 passed" in result.stdout
    assert "auditing on" in result.stderr  # the launcher's runtime, not only the fixture's
    events = [json.loads(line)["event_name"] for line in sink.read_text().splitlines()]
    assert "audit.audit_system.start" in events
    assert any(name.startswith("audit.data_modification.") for name in events), events


def _pytest_only_site(site: Path) -> None:
    """pytest and its dependencies, and nothing else of this environment."""
    for dist_name in ("pytest", "pluggy", "iniconfig", "packaging", "pygments"):
        dist = importlib.metadata.distribution(dist_name)
        tops = {Path(str(f)).parts[0] for f in dist.files or () if not str(f).startswith("..")}
        for top in tops:
            source = Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists() and top != "__pycache__":
                (site / top).symlink_to(source)


def _install_broken_otel_audit(site: Path, break_it: str) -> None:
    """A copy of this tree's otel-audit, registered with pyproject.toml's entry points, then broken."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    plugin = project["project"]["entry-points"]["pytest11"]["otel_audit"]
    shutil.copytree(REPO / "otel_audit", site / "otel_audit", ignore=shutil.ignore_patterns("__pycache__", "_native"))
    for module in project["tool"]["setuptools"].get("py-modules", []):
        shutil.copy(REPO / f"{module}.py", site / f"{module}.py")
    info = site / "otel_audit-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: otel-audit\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[pytest11]\notel_audit = {plugin}\n")
    if break_it == "package-raises":
        (site / "otel_audit" / "__init__.py").write_text("raise ImportError(\"No module named 'opentelemetry'\")\n")
    else:  # a partial install: the testing subpackage is gone
        shutil.rmtree(site / "otel_audit" / "testing")


@pytest.mark.parametrize("break_it, cause", [
    ("package-raises", "importing otel_audit failed (ImportError: No module named 'opentelemetry')"),
    ("testing-missing", "otel-audit is partly installed (No module named 'otel_audit.testing')"),
])
def test_a_broken_install_leaves_pytest_running_with_a_notice(tmp_path: Path, break_it: str, cause: str) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _pytest_only_site(site)
    _install_broken_otel_audit(site, break_it)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n'
                                            'audit_policy = "pack:default"\n')
    (project / "test_app.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n\n\n"
                                         "def test_audited(audit_trail):\n    pass\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)}
    # -S: no site-packages, so this interpreter sees pytest and the broken copy only
    result = subprocess.run([sys.executable, "-S", "-m", "pytest", "-p", "no:cacheprovider", "-rA"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert "1 passed, 1 error" in result.stdout, output
    assert f"otel-audit: the audit_trail fixture is unavailable: {cause}" in result.stdout
    assert "audit_trail: otel-audit cannot be imported" in result.stdout
    assert "INTERNALERROR" not in output and "Traceback" not in result.stderr
