import pytest

from app import create_app


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("STRICT_DB", str(tmp_path / "strict.db"))
    return create_app().test_client()
