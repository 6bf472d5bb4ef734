"""The tests' secret finder: secrets left in a text, found with the redaction engine itself
(regex proposes, validator decides).

For tests and tools, not the hot path (the engine's own scan is ``text_scan.py``):
``otel_audit.testing``'s ``assert_no_secrets`` scans every captured record with it, so "no
secret left the process" is judged by exactly the detectors and rules that redact. It runs a :class:`~otel_audit.redaction.Redactor` whose chosen detectors all
``mask``, and reports what it replaced; nothing here changes what the runtime's redactor does.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable

from otel_audit.redaction.actions import REDACTION_MARKER
from otel_audit.redaction.detectors import BUILTIN_DETECTORS, SECRET_CLASS

#: What must never leave the process in clear (:data:`~otel_audit.redaction.detectors.SECRET_CLASS`).
DEFAULT_SCAN = SECRET_CLASS

#: What the redactor writes in place of a masked value.
_MARKER = re.compile(r"\[REDACTED:([^\]\s]{1,64})\]")


@lru_cache(maxsize=16)
def _scanner(names: tuple[str, ...]) -> Any:
    from otel_audit.redaction.walk import Redactor

    known = [d.name for d in BUILTIN_DETECTORS]
    for name in names:
        if name not in known:
            raise ValueError(f"unknown detector {name!r}; known detectors: {', '.join(known)}")
    actions = {name: ("mask" if name in names else "off") for name in known}
    return Redactor.from_config({"detectors": actions}, environ={})


_PLACEHOLDER = "\ue000"  # stands in for a marker already in the text (private-use, never a secret)


def find_secrets(text: str, detectors: Iterable[str] | None = None) -> list[tuple[str, int, int]]:
    """``(detector or rule name, start, end)`` for every secret in ``text``, in text order.

    ``detectors``: names of built-in detectors (default :data:`DEFAULT_SCAN`). Values already
    redacted (``[REDACTED:…]``, ``[HMAC:…]``) are not findings. Spans are exact when the redactor
    replaced values in place; when it restructured the text (parsed JSON, for example) the finding
    spans the whole text.
    """
    names = tuple(sorted(DEFAULT_SCAN if detectors is None else detectors))
    # Markers already present are swapped for one placeholder character each, so the scan does
    # not judge them (and positions map back through ``origin``).
    protected, origin, position = [], [], 0
    for marker in REDACTION_MARKER.finditer(text):
        protected.append(text[position:marker.start()])
        origin.extend(range(position, marker.start()))
        protected.append(_PLACEHOLDER)
        origin.append(marker.start())
        position = marker.end()
    protected.append(text[position:])
    origin.extend(range(position, len(text)))
    origin.append(len(text))
    guarded = "".join(protected)
    redacted = _scanner(names).redact_text(guarded)
    if redacted == guarded:
        return []
    found = []
    for label, start, end in _replaced_spans(guarded, redacted):
        if guarded[start:end].strip(_PLACEHOLDER) == "" and end > start:
            continue  # only an earlier marker was re-judged
        found.append((label, origin[start], origin[end] if end < len(origin) else len(text)))
    return found


def _replaced_spans(guarded: str, redacted: str) -> list[tuple[str, int, int]]:
    """Where each ``[REDACTED:label]`` of ``redacted`` sits in ``guarded``: the literal text between
    markers is unchanged, so each marker spans up to the next literal."""
    parts = _MARKER.split(redacted)
    literals, labels = parts[0::2], parts[1::2]
    if not labels:
        return [("redacted", 0, len(guarded))]  # restructured without a marker
    if not guarded.startswith(literals[0]) or not guarded.endswith(literals[-1]):
        return [(labels[0], 0, len(guarded))]
    spans = []
    position = len(literals[0])
    for index, label in enumerate(labels):
        following = literals[index + 1]
        if index == len(labels) - 1:
            end = len(guarded) - len(following)
        elif following:
            end = guarded.find(following, position)
        else:
            end = position
        if end < position:
            return [(labels[0], 0, len(guarded))]
        spans.append((label, position, max(end, position)))
        position = end + len(following)
    return spans
