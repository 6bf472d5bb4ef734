"""What is written in place of a value: the actions (``mask``, ``partial``, ``hmac``, ``drop``)
applied to one value, and to the spans a text scan found (overlapping spans become one region
with the strictest action found for any part of it, so nothing partially leaks).

:class:`Replacements` is the part of :class:`~otel_audit.redaction.walk.Redactor` that writes
replacements; the walk decides where they go.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from otel_audit.redaction.detectors import Detector
from otel_audit.redaction.pseudonyms import EphemeralKey, hmac_pads, pseudonym

if TYPE_CHECKING:
    from otel_audit.redaction.walk import _Pass

#: What :meth:`Replacements._apply` returns for a value the ``drop`` action removes.
DROP = object()
#: What the redactor writes in place of a value: ``[REDACTED:label]``, ``[REDACTED:label:shown]``
#: (partial), ``[HMAC:<20 hex digits>]``. Text already in this form is not redacted again.
REDACTION_MARKER = re.compile(r"\[(?:REDACTED:[A-Za-z0-9_.\-]{1,64}(?::[^\]\s]{1,64})?|HMAC:[0-9a-f]{20})\]")
#: Overlapping findings become one region with the strictest of their actions: a DSN password
#: that the e-mail detector also reads as ``password@host`` is masked, not pseudonymised.
_ACTION_STRICTNESS = {"drop": 4, "mask": 3, "hmac": 2, "partial": 1}


class Replacements:
    """Actions on values and on found spans, for a redactor with ``settings``, ``_key``,
    ``_actions`` (detector name -> action), ``_detectors``, ``_card`` and ``_hmac`` (the key's
    pads, made on first use)."""

    settings: Any
    _key: bytes | None
    _hmac: Any
    _actions: Any
    _detectors: tuple[Detector, ...]
    _card: Detector | None

    def _apply(self, action: str, label: str, value: Any, state: _Pass) -> Any:
        if value is None:
            return None
        if action == "drop":
            state.count += 1
            return DROP
        if type(value) is str and value[:1] == "[" and REDACTION_MARKER.fullmatch(value):
            return value  # already redacted (a record redacted twice stays as it was)
        if isinstance(value, (list, tuple)):
            return [self._apply(action, label, item, state) for item in value if item is not None]
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value).decode("utf-8", "replace")
        state.count += 1
        if action == "hmac":
            if not isinstance(value, str):
                value = _canonical(value)
            return self._pseudonym(label, value, state)
        if action == "partial" and isinstance(value, str):
            return _partial(label, value)
        return f"[REDACTED:{label}]"


    def _pseudonym(self, label: str, value: str, state: _Pass) -> str:
        pads = self._hmac
        if pads is None:
            key = self._key
            if key is None:
                if self.settings.hmac_missing_key == "mask":
                    return f"[REDACTED:{label}]"
                key = EphemeralKey.get()[0]
            # The keyed states (inner and outer pads hashed) are made once and copied per value.
            pads = self._hmac = hmac_pads(key)
        state.used_hmac = True
        return pseudonym(pads, value)

    def _card_detector(self) -> Detector:
        for detector in self._detectors:
            if detector.name == "credit_card":
                return detector
        from otel_audit.redaction.detectors import BUILTIN_DETECTORS

        return next(d for d in BUILTIN_DETECTORS if d.name == "credit_card")

    def _detector_replacement(self, detector: Detector, found: str, state: _Pass) -> str:
        action = self._actions.get(detector.name, detector.default_action)
        if action == "off":
            return found
        if action == "mask":  # what _apply does for a string, without its checks for other values
            state.count += 1
            return f"[REDACTED:{detector.name}]"
        if action == "hmac":
            state.count += 1
            return self._pseudonym(detector.name, found, state)
        if action == "drop":
            state.drop_attribute = True
            state.count += 1
            return f"[REDACTED:{detector.name}]"
        replaced = self._apply(action, detector.name, found, state)
        return replaced if isinstance(replaced, str) else f"[REDACTED:{detector.name}]"

    def _strictness(self, detector: Detector) -> int:
        return _ACTION_STRICTNESS.get(self._actions.get(detector.name, detector.default_action), 0)

    def _replace_spans(self, text: str, spans: list[tuple[int, int, Detector]], state: _Pass) -> str:
        """``text`` with each found span (sorted as :func:`~otel_audit.redaction.text_scan.scan_text`
        returns them) replaced as its detector's action says; overlapping spans become one region,
        so nothing partially leaks."""
        if "[REDACTED:" in text or "[HMAC:" in text:
            spans = _outside_markers(text, spans)
            if not spans:
                return text
        card = self._card
        if card is not None and any(span[2] is card for span in spans):
            spans = [span for span in spans if span[2] is not card or not _inside_hex_id(text, span[0], span[1])]
            if not spans:
                return text
        merged: list[list[Any]] = []
        for start, end, detector in spans:
            if merged and start < merged[-1][1]:  # overlap: one region, nothing partially leaks
                region = merged[-1]
                region[1] = max(region[1], end)
                if self._strictness(detector) > self._strictness(region[2]):
                    region[2] = detector  # the strictest action found for any part of it
                continue
            merged.append([start, end, detector])
        pieces = []
        position = 0
        for start, end, detector in merged:
            pieces.append(text[position:start])
            pieces.append(self._detector_replacement(detector, text[start:end], state))
            position = end
        pieces.append(text[position:])
        return "".join(pieces)


def _outside_markers(text: str, spans: list[tuple[int, int, Detector]]) -> list[tuple[int, int, Detector]]:
    """The spans not inside one of the redactor's own markers: what an earlier pass wrote is not
    redacted again (``password=[REDACTED:secret_assignment]`` would otherwise become
    ``password=[REDACTED:secret_assignment]]``, a 13-digit run in an HMAC pseudonym a card)."""
    regions = [marker.span() for marker in REDACTION_MARKER.finditer(text)]
    if not regions:
        return spans
    return [span for span in spans if not any(start <= span[0] and span[1] <= end for start, end in regions)]


_HEX_ID_CHARS = frozenset("0123456789abcdefABCDEF-")
_HEX_LETTERS = frozenset("abcdefABCDEF")


def _inside_hex_id(text: str, start: int, end: int) -> bool:
    """A card-like digit run glued to a hex letter inside a UUID, a hash or a trace id
    (``1172ebe1-bf36-3422-8970-99779507a423``, ``34a2765c62ab57533654198052b7e380``): a token
    of 20+ hex digits and dashes with a hex letter in it. A card glued to other letters
    (``x4111…``, ``ÿ4111…``), or to a short hex token, is still a card."""
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if before not in _HEX_LETTERS and after not in _HEX_LETTERS:
        return False  # not glued to a hex letter: the validator's word stands
    left, right = start, end
    while left > 0 and text[left - 1] in _HEX_ID_CHARS:
        left -= 1
    while right < len(text) and text[right] in _HEX_ID_CHARS:
        right += 1
    return right - left >= 20


def _canonical(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _partial(label: str, text: str) -> str:
    """Enough to tell items apart when investigating, never enough to use them."""
    shown = None
    if label == "credit_card":
        digits = "".join(c for c in text if c.isdigit())
        shown = "****" + digits[-4:]
    elif label == "iban":
        compact = text.replace(" ", "")
        shown = compact[:2] + "****" + compact[-4:]
    elif label == "email" and "@" in text:
        local, _, domain = text.rpartition("@")
        shown = local[:1] + "***@" + domain
    elif label == "phone":
        digits = "".join(c for c in text if c.isdigit())
        shown = "****" + digits[-2:]
    elif label == "ipv4":
        shown = ".".join(text.split(".")[:2]) + ".*.*"
    elif len(text) >= 20:
        shown = "****" + text[-4:]
    return f"[REDACTED:{label}:{shown}]" if shown else f"[REDACTED:{label}]"
