"""Find secrets in text with the redaction module's own detectors (regex proposes, validator decides).

For tests and tools, not the hot path: ``otel_audit.testing``'s ``assert_no_secrets`` scans every
captured record with it, so "no secret left the process" is checked by the same detectors that
redact. Nothing here changes what the :class:`~otel_audit.redaction.Redactor` does.
"""

from __future__ import annotations

import re
from typing import Iterable

from otel_audit.redaction.detectors import BUILTIN_DETECTORS, Detector
from otel_audit.redaction.engine import _find, _scan_plan

#: What must never leave the process in clear: every ``secret`` detector, plus card numbers (PCI DSS).
DEFAULT_SCAN = tuple(d.name for d in BUILTIN_DETECTORS if d.kind == "secret") + ("credit_card",)

#: What the redactor writes in place of a value (``mask`` and ``hmac`` actions).
REDACTION_MARKER = re.compile(r"\[(?:REDACTED|HMAC):[^\]\s]{0,64}\]")


def detectors_named(names: Iterable[str]) -> tuple[Detector, ...]:
    """Built-in detectors by name; an unknown name raises ValueError listing the known ones."""
    by_name = {d.name: d for d in BUILTIN_DETECTORS}
    chosen = []
    for name in names:
        if name not in by_name:
            raise ValueError(f"unknown detector {name!r}; known detectors: {', '.join(by_name)}")
        chosen.append(by_name[name])
    return tuple(chosen)


def find_secrets(text: str, detectors: Iterable[str] | None = None,
                 ignore_redacted: bool = True) -> list[tuple[str, int, int]]:
    """``(detector name, start, end)`` for every validated finding in ``text``, in text order.

    ``detectors``: names of built-in detectors (default :data:`DEFAULT_SCAN`). A string built to
    exhaust the validators (too many rejected candidates) is reported whole, as the redactor would
    treat it. With ``ignore_redacted``, findings that lie inside a redaction marker
    (``password=[REDACTED:secret_assignment]`` looks like an assignment) are not reported.
    """
    chosen = detectors_named(DEFAULT_SCAN if detectors is None else detectors)
    lowered = text.lower()
    found: list[tuple[str, int, int]] = []
    for compiled, group in _scan_plan(chosen):
        if len(group) == 1 and not group[0].may_match(text, lowered):
            continue
        spans = _find(compiled, group, text)
        if spans is None:
            found.append((group[0].name, 0, len(text)))
            continue
        found.extend((detector.name, start, end) for start, end, detector in spans)
    if ignore_redacted and found:
        markers = [m.span() for m in REDACTION_MARKER.finditer(text)]
        found = [item for item in found if not any(lo <= item[1] and item[2] <= hi for lo, hi in markers)]
    return sorted(found, key=lambda item: (item[1], item[2]))
