"""Fixtures of the FastAPI example's audit tests: the app on a SQLite file of this test session.

The ``audit_trail`` fixture comes from otel-audit's pytest plugin (installed with otel-audit).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXAMPLE))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='notes-fastapi-')}/notes.db")

import app as notes_app  # noqa: E402


@pytest.fixture
def client():
    from fastapi.testclient import TestClient

    with TestClient(notes_app.app, raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(client, username: str, password: str) -> dict[str, str]:
    token = client.post("/token", json={"username": username, "password": password}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}
