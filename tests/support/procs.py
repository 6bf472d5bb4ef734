"""Helpers to run apps under the real ``opentelemetry-instrument`` launcher in a subprocess."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launcher() -> str:
    """Path of the opentelemetry-instrument script of this interpreter's environment."""
    candidate = Path(sys.executable).with_name("opentelemetry-instrument")
    return str(candidate) if candidate.exists() else shutil.which("opentelemetry-instrument") or "opentelemetry-instrument"


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment for an instrumented child: no inherited OTEL_* surprises."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHONUNBUFFERED": "1",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
    )
    env.update(extra)
    return env


class Server:
    """A server process started with a command line; waits until ``url`` answers."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], url: str, cwd: str | Path | None = None,
                 log_path: Path | None = None) -> None:
        self.argv = list(argv)
        self.url = url
        self.log_path = log_path
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.argv, env=dict(env), cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> "Server":
        """Wait until the server answers; if it never does, stop it (no orphan left spinning) and raise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                requests.get(self.url, timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop(sig=9, timeout=5)
        raise RuntimeError(f"server not ready after {timeout}s: {self.output()}")

    def output(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""

    def stop(self, sig: int = 15, timeout: float = 15.0) -> int | None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=5)
        if self._log is not subprocess.DEVNULL:
            self._log.close()
        return self.proc.returncode
