"""pySigma lives in the ``detections`` extra: the core injected into apps never imports it, and
without it the commands say which extra to install."""

from __future__ import annotations

import subprocess
import sys

from tests.support.procs import REPO, base_env

NO_SIGMA = "import sys\nsys.modules['sigma'] = None  # as if the extra were not installed\n"


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=base_env(), capture_output=True, text=True,
                          timeout=120)


def test_the_core_the_cli_and_the_pytest_plugin_import_no_sigma() -> None:
    result = run(
        "import sys, otel_audit, otel_audit.runtime, otel_audit.cli, otel_audit_pytest, otel_audit.testing.trail\n"
        "import otel_audit.testing.attacks\n"
        "otel_audit.cli.build_parser()\n"
        "loaded = [m for m in sys.modules if m == 'sigma' or m.startswith('sigma.')]\n"
        "assert not loaded, loaded\n")
    assert result.returncode == 0, result.stderr


def test_without_the_extra_the_commands_name_it() -> None:
    result = run(NO_SIGMA + "from otel_audit.cli import main\nraise SystemExit(main(['detections', 'list']))\n")
    assert result.returncode == 2
    assert "pip install 'otel-audit[detections]'" in result.stderr and "Traceback" not in result.stderr
