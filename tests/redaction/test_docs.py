"""docs/redaction.md lists every detector, its validator and default action, from the data."""

from __future__ import annotations

from pathlib import Path

from otel_audit.redaction.doctable import detector_table
from otel_audit.redaction.keys import PROTECTED_ATTRIBUTES

DOC = Path(__file__).resolve().parents[2] / "docs" / "redaction.md"


def test_detector_table_matches_the_detector_data() -> None:
    assert detector_table() in DOC.read_text(), "regenerate with: python -m otel_audit.redaction.doctable"


def test_protected_attributes_are_documented() -> None:
    text = DOC.read_text()
    assert all(f"`{name}`" in text for name in PROTECTED_ATTRIBUTES)
