"""Every redaction test module runs twice: with the RE2 prefilter (when the ``re2`` extra is
installed, as in CI) and on the pure-Python path, so both stay covered."""

from __future__ import annotations

from typing import Iterator

import pytest

from otel_audit.redaction import engine


@pytest.fixture(scope="module", autouse=True, params=[True, False], ids=["re2", "pure"])
def prefilter_mode(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Redactors built without an explicit ``prefilter=`` use this mode."""
    before = engine.PREFILTER_DEFAULT
    engine.PREFILTER_DEFAULT = request.param
    try:
        yield request.param
    finally:
        engine.PREFILTER_DEFAULT = before
