"""The text scan: the spans of a text that detectors found and validators accepted.

:func:`scan_text` runs a :class:`~otel_audit.redaction.scan_plan.ScanPlan` over one text: in
the native scan loop where it reads the patterns exactly as ``re`` does (ASCII text, built-in
detectors), else in Python, with the same results. It says what was found and never what to
write instead: the walk (:mod:`otel_audit.redaction.walk`) applies the detectors' actions.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from typing import Any

from otel_audit.redaction.detectors import SHAPE_TABLE, Detector
from otel_audit.redaction.keys import builtin_key_rule
from otel_audit.redaction.scan_plan import MAX_REJECTIONS, DetectorGroup, ScanPlan, text_features

Span = tuple[int, int, Detector]

#: Texts redacted whole because a scan hit its bound (PCRE2's match limit), since start.
SCAN_LIMIT_HITS = [0]
_SCAN_LIMIT_MARKER = "[REDACTED:scan_limit]"
#: What the native loop leaves to Python in an ASCII text (U+001C..U+001F: Python's ``\s``
#: matches them, PCRE2's does not). An ASCII text without them that it answers None for: a limit.
_NATIVE_UNREAD = re.compile("[\x1c-\x1f]")
_NO_SPANS: tuple[Span, ...] = ()  # immutable: shared by every clean text


def _scan_limit_hit() -> str:
    """A text whose scan hit the engine's bound: redacted whole, counted (never passed through)."""
    SCAN_LIMIT_HITS[0] += 1
    if SCAN_LIMIT_HITS[0] == 1:
        print(
            "otel-audit: redaction: a text hit the scan's match limit and was redacted whole "
            "([REDACTED:scan_limit]); further ones are counted, not printed",
            file=sys.stderr,
        )
    return _SCAN_LIMIT_MARKER


def span_order(span: Span) -> tuple[int, int]:
    """The order spans are replaced in: by start, the longest first."""
    return span[0], -span[1]


def scan_text(text: str, plan: ScanPlan) -> list[Span] | tuple[Span, ...] | str:
    """The validated spans in ``text``, sorted by :func:`span_order` (empty: nothing found); or,
    when the whole text is unsafe (too many rejected candidates, the scan's match limit hit), the
    marker that replaces it whole (``[REDACTED:credit_card]``, ``[REDACTED:scan_limit]``)."""
    # Non-ASCII text is Python's to scan (a lone surrogate, from surrogateescape, would not
    # even cross into the native loop).
    if plan.native is not None and text.isascii():
        found = plan.native.scan(text)
        if found is not None:  # else: a text only Python's ``re`` reads exactly (separators)
            if type(found) is not list:  # too many rejected candidates: the whole string is unsafe
                return f"[REDACTED:{found.name}]"
            return found  # sorted by the native loop as span_order sorts
        if _NATIVE_UNREAD.search(text) is None:
            # The native loop takes this text but stopped: PCRE2 hit its match limit (or the
            # loop panicked). The text is not scanned again without that bound: it is unsafe.
            return _scan_limit_hit()
    ascii_text = text.isascii()
    lowered: str | None = None
    text_shape = text.encode("ascii").translate(SHAPE_TABLE) if ascii_text else None
    spans: list[Span] | None = None
    # Only entries whose shortest match fits in the text and whose needed characters occur.
    for entry in plan.select(text_features(text, text_shape), len(text)):
        if entry.unguarded:  # no checks, no anchors: the regex's own literal prefix is the check
            compiled = entry.compiled
            # A policy's regex (RE2) searches through a searcher that encodes the text once.
            search = compiled.search if type(compiled) is re.Pattern else compiled.searcher(text)
            first = search(text)
            if first is None:
                continue
            found = find_validated(compiled, entry.detectors, text, first, search)
            if found is None:
                return f"[REDACTED:{entry.detectors[0].name}]"
            if found:
                if spans is None:
                    spans = found
                else:
                    spans.extend(found)
            continue
        compiled, detectors, _, literals, lower_literals, gate, shape_gate, keyed, anchored, _ = entry
        if literals is not None:  # one of these literals must occur (or, lower-cased, one of those)
            for literal in literals:
                if literal in text:
                    break
            else:
                if not lower_literals:
                    continue
                if lowered is None:
                    lowered = text.lower()
                for literal in lower_literals:
                    if literal in lowered:
                        break
                else:
                    continue
        if gate is not None and not gate(text):
            continue
        if text_shape is not None and shape_gate is not None and not shape_gate(text_shape):
            continue
        if anchored is None:
            search = compiled.search if type(compiled) is re.Pattern else compiled.searcher(text)
        else:
            if type(anchored) is DetectorGroup:
                if text_shape is not None and anchored.anchored:  # tried only where a match can start
                    starts = anchored.starts(text_shape)
                    if not starts:
                        continue
                    found = find_validated_at(compiled, detectors, text, starts)
                    if found is None:
                        return f"[REDACTED:{detectors[0].name}]"
                    if found:
                        if spans is None:
                            spans = found
                        else:
                            spans.extend(found)
                    continue
                anchors, anchor_in = (), "search"
            else:
                anchors, anchor_in = anchored
            if anchor_in == "text":
                search = Anchored(compiled, anchors, text)
            elif not ascii_text or anchor_in == "search":
                search = compiled.search
            elif anchor_in == "lower":
                if lowered is None:
                    lowered = text.lower()
                search = Anchored(compiled, anchors, lowered)
            else:
                search = Anchored(compiled, anchors, text_shape)
        first = search(text)
        if first is None:
            continue
        if keyed is not None:
            found = find_keyed(compiled, keyed, text)
        else:
            found = find_validated(compiled, detectors, text, first, search)
        if found is None:  # too many rejected candidates: treat the whole string as unsafe
            return f"[REDACTED:{detectors[0].name}]"
        if found:
            if spans is None:
                spans = found
            else:
                spans.extend(found)
    if not spans:
        return _NO_SPANS
    if len(spans) > 1:
        spans.sort(key=span_order)
    return spans


class Anchored:
    """``compiled.search`` for a regex whose every match starts where one of ``anchors`` occurs
    (``(literal, offset)``: the literal ``offset`` characters after the start) in ``haystack``
    (the text, its lower-cased form or its shape, position for position): the regex is tried at
    those places only, in order, which finds exactly what a search would. Each literal's next
    occurrence is remembered, so a text is read once per literal however many candidates it has
    (positions only move forward within one scan)."""

    __slots__ = ("match", "anchors", "haystack", "starts")

    def __init__(self, compiled: re.Pattern[str], anchors: tuple[tuple[Any, int], ...], haystack: Any) -> None:
        self.match = compiled.match
        self.anchors = anchors
        self.haystack = haystack
        # Per anchor: the first start at or after the last position asked for (-1: none left;
        # -2: not looked for yet).
        self.starts = [-2] * len(anchors)

    def __call__(self, text: str, position: int = 0) -> re.Match[str] | None:
        find = self.haystack.find
        match_at = self.match
        anchors = self.anchors
        starts = self.starts
        while True:
            best = -1
            for index, (literal, offset) in enumerate(anchors):
                start = starts[index]
                if start == -1:
                    continue
                if start < position:  # -2 (not looked for yet) or behind us: look again
                    found = find(literal, position + offset)
                    start = starts[index] = found - offset if found >= 0 else -1
                    if start == -1:
                        continue
                if best < 0 or start < best:
                    best = start
            if best < 0:
                return None
            candidate = match_at(text, best)
            if candidate is not None:
                return candidate
            position = best + 1



def find_validated(
    compiled: re.Pattern[str],
    detectors: tuple[Detector, ...],
    text: str,
    match: re.Match[str] | None = None,
    search: Any = None,
) -> list[Span] | None:
    """Validated spans in ``text``; a rejected candidate is retried one character on, so
    ``12 4111111111111111`` still finds the card. ``match``: the first candidate, when the
    caller already searched for it."""
    single = detectors[0] if len(detectors) == 1 else None
    has_value = single is not None and "value" in compiled.groupindex
    found: list[Span] = []
    position = 0
    rejections = 0
    length = len(text)
    if search is None:
        search = compiled.search
    while position <= length:
        if match is None:
            match = search(text, position)
            if match is None:
                break
        candidate, match = match, None
        detector = single if single is not None else detectors[int(candidate.lastgroup[2:])]
        if has_value and candidate.group("value") is not None:
            start, end = candidate.span("value")
        else:
            start, end = candidate.span()
        if detector.keyed and not secret_name_before(text, candidate.start()):
            position = candidate.start() + 1
            continue
        if detector.extend_left:
            # Up to 64 allowed characters just before the match, read backwards in one regex.
            floor = start - 64 if start > 64 else 0
            left = start
            if start:
                left -= _extend_left(detector.extend_left).match(
                    text[start - 1 : floor - 1 : -1] if floor else text[start - 1 :: -1]
                ).end()
            if left == start:
                position = candidate.start() + 1
                continue
            start = left
        if end == start:
            position = candidate.end() + 1
            continue
        accept = detector.accept
        if accept is None:
            found.append((start, end, detector))
            position = candidate.end()
            continue
        taken = accept(text[start:end])
        if taken:
            found.append((start, start + taken, detector))
            position = max(start + taken, candidate.start() + 1)
        else:
            rejections += 1
            if rejections > MAX_REJECTIONS:
                return None
            position = candidate.start() + 1
    return found


def find_validated_at(
    compiled: re.Pattern[str], detectors: tuple[Detector, ...], text: str, starts: list[int]
) -> list[Span] | None:
    """:func:`find_validated` for a :class:`DetectorGroup` whose every match starts at one of ``starts``
    (sorted): the regex is matched there only, in order (its members have no value group, no
    key rule and extend nothing to the left)."""
    found: list[Span] = []
    position = 0
    rejections = 0
    match_at = compiled.match
    for start in starts:
        if start < position:
            continue
        candidate = match_at(text, start)
        if candidate is None:
            continue
        detector = detectors[int(candidate.lastgroup[2:])]  # type: ignore[index]
        end = candidate.end()
        if end == start:
            position = end + 1
            continue
        accept = detector.accept
        if accept is None:
            found.append((start, end, detector))
            position = end
            continue
        taken = accept(text[start:end])
        if taken:
            found.append((start, start + taken, detector))
            position = start + taken
        else:
            rejections += 1
            if rejections > MAX_REJECTIONS:
                return None
            position = start + 1
    return found


#: Read backwards from the operator: the longest run of name characters (at most 41) that ends
#: in a letter, i.e. the name's first letter when read forwards.
_NAME_REVERSED = re.compile(r"[A-Za-z0-9_.-]{0,40}[A-Za-z]")


@lru_cache(maxsize=64)
def _extend_left(allowed: str) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(c) for c in allowed) + "]*")


def secret_name_before(text: str, operator: int) -> bool:
    """Is the word before ``=``/``:`` a secret name (``password``, ``db_password``, ``sessionid``)?

    The name is the longest ``[A-Za-z][A-Za-z0-9_.-]{0,40}`` that ends, after an optional quote
    and at most 5 spaces or tabs, right at the operator, within the 48 characters before it.
    Worked out from the operator backwards (a left-to-right regex retried at every letter of the
    window was the redactor's biggest cost)."""
    floor = operator - 48 if operator > 48 else 0
    end = operator
    while end > floor and text[end - 1] in " \t":
        end -= 1
        if operator - end > 5:
            return False
    if end > floor and text[end - 1] in "\"'":
        end -= 1
    if end <= floor:
        return False
    name = _NAME_REVERSED.match(text[end - 1 : floor - 1 : -1] if floor else text[end - 1 :: -1])
    if name is None:
        return False
    return builtin_key_rule(text[end - name.end() : end]) is not None


#: The text read backwards: an operator, at most 5 spaces or tabs, an optional quote, then the
#: name (see :func:`secret_name_before`). Tried at operators only, every name read once.
_OPERATOR_NAME_REVERSED = re.compile(r"[:=][ \t]{0,5}[\"']?([A-Za-z0-9_.-]{0,40}[A-Za-z])")


def find_keyed(compiled: re.Pattern[str], detector: Detector, text: str) -> list[Span]:
    """:func:`find_validated` for ``secret_assignment`` (keyed, no validator, matches start at ``:``/``=``):
    the operators whose name is a secret name are found in one backwards pass over the text,
    then the value is matched at each of them, left to right, as a search would."""
    backwards = text[::-1]
    last = len(text) - 1
    operators = []
    for named in _OPERATOR_NAME_REVERSED.finditer(backwards):
        if builtin_key_rule(named.group(1)[::-1]) is not None:
            operators.append(last - named.start())
    found: list[Span] = []
    if not operators:
        return found
    operators.reverse()
    match_at = compiled.match
    has_value = "value" in compiled.groupindex
    position = 0
    for operator in operators:
        if operator < position:
            continue
        match = match_at(text, operator)
        if match is None:
            continue
        if has_value and match.group("value") is not None:
            start, end = match.span("value")
        else:
            start, end = match.span()
        if end == start:
            position = match.end() + 1
            continue
        found.append((start, end, detector))
        position = match.end()
    return found

