"""Fixtures of the example's audit tests: a fresh app on its own SQLite file per test.

The ``audit_trail`` fixture comes from otel-audit's pytest plugin (installed with otel-audit).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXAMPLE))

from app import create_app  # noqa: E402


@pytest.fixture
def client(tmp_path):
    app = create_app(str(tmp_path / "notes.db"))
    return app.test_client()


def login(client, username: str, password: str):
    return client.post("/login", data={"username": username, "password": password})
