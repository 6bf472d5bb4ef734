"""The scan plan: the detectors arranged so a text is scanned cheaply, and the native scan loop.

Built once per redactor from its detectors (:func:`plan_entries`): one :class:`PlanEntry` per
detector, except detectors sharing a ``lead`` (``\\d``: card, SSN, IPv4), which are one
:class:`DetectorGroup` found in a single pass. Each entry carries the shortest text it can
match, the cheap checks that must pass before its regex runs and where its matches start.
:class:`ScanPlan` selects, per text, the entries its features (:func:`text_features`) and length
can need, and holds the native scanner for the plan when it can read it exactly.
:mod:`otel_audit.redaction.text_scan` runs it.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from otel_audit.config import native_scan_enabled
from otel_audit.redaction.detectors import NEED_CHARS, Detector
from otel_audit.redaction.keys import is_secret_name

try:  # the optional native scan loop (Rust, built when the package is installed with cargo present)
    from otel_audit.redaction._scanner import Scanner as NativeScanner
except ImportError:  # pragma: no cover - exercised where the extension is not built
    NativeScanner = None

#: Validator rejections per detector per string before the string is masked whole (adversarial input).
MAX_REJECTIONS = 2_000


class PlanEntry(NamedTuple):
    """One scan-plan entry: a detector, or a group of detectors sharing a lead, with its checks."""

    compiled: Any  # re.Pattern, or a policy regex's LinearPattern (RE2)
    detectors: tuple[Detector, ...]
    min_width: int  # the shortest text it can match
    literals: tuple[str, ...] | None  # one of these must occur (exact case) ...
    lower_literals: tuple[str, ...]  # ... or, lower-cased, one of these
    gate: Any  # a cheap check on the text
    shape_gate: Any  # a cheap check on an ASCII text's shape
    keyed: Detector | None  # ``secret_assignment``: operators after secret names first
    anchored: Any  # where its matches start: (anchors, anchor_in), or a DetectorGroup
    unguarded: bool  # no checks, no anchors: the regex's own literal prefix is the check


def native_enabled() -> bool:
    """The native scan loop is built and ``OTEL_AUDIT_NATIVE_SCAN`` does not switch it off."""
    return NativeScanner is not None and native_scan_enabled()


#: Python ``re`` flags written as inline flags for PCRE2 (others: the plan stays in Python).
_INLINE_FLAGS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"))


def _native_scanner(entries: list[PlanEntry], requires: list[tuple[tuple[int, ...], ...]]) -> Any:
    """The plan as the native scanner reads it, or None where only Python can scan it exactly.

    Custom detectors stay in Python: a policy's regex may use syntax PCRE2 reads differently.
    The built-in patterns are written in the syntax both read alike (tests compare the two on
    the corpus and on generated text). Shape gates and anchors are not passed: they only skip
    work (every match meets them), while literals and gates can decide and are kept."""
    if NativeScanner is None:
        return None
    specs = []
    for entry, entry_requires in zip(entries, requires):
        compiled, detectors = entry.compiled, entry.detectors
        if any(d.kind == "custom" for d in detectors):
            return None
        flags, inline = compiled.flags & ~re.UNICODE, ""
        for flag, letter in _INLINE_FLAGS:
            if flags & flag:
                flags &= ~flag
                inline += letter
        if flags:
            return None
        members = [(d, d.accept, d.keyed, d.extend_left) for d in detectors]
        specs.append((
            f"(?{inline}){compiled.pattern}" if inline else compiled.pattern, entry.min_width,
            [list(member) for member in entry_requires], list(entry.literals) if entry.literals is not None else None,
            list(entry.lower_literals), entry.gate, members,
        ))  # fmt: skip
    try:
        return NativeScanner(specs, is_secret_name, NEED_CHARS, MAX_REJECTIONS)
    except ValueError:  # a pattern PCRE2 does not take: scan in Python
        return None


class ScanPlan:
    """Scan-plan entries, in detector order, and the sub-lists a text actually needs, cached by
    the text's *features* and length: an entry is left out when its shortest match is longer
    than the text, or when no member's :attr:`~Detector.needs` (characters every match
    contains: ``=``, ``:``, ``@``, ``_``, ``-``, ``.``, ``/``, a digit) all occur in the text.
    A clean sentence without ``=``/``:``/``@`` or a JSON leaf of digits skips most entries
    without visiting them. ``dispatch=False``: every entry that fits the length (the plain way,
    for tests)."""

    __slots__ = ("entries", "_longest", "_selected", "_requires", "_dispatch", "native")

    def __init__(self, entries: list[PlanEntry], dispatch: bool = True, native: bool = False) -> None:
        self.entries = entries
        self._longest = max((entry.min_width for entry in entries), default=0)
        self._selected: dict[int, list[PlanEntry]] = {}
        self._dispatch = dispatch
        # Per entry, per member: the feature bits of which each must meet the text's (an
        # entry runs when one member's requirements all hold; no requirement: always).
        self._requires = [tuple(_feature_requirements(d) for d in entry.detectors) for entry in entries]
        #: The native scanner for this plan (``native=True``, the extension built, and every
        #: detector a built-in one), else None: the plan is then scanned in Python.
        self.native = _native_scanner(entries, self._requires) if native else None

    def __iter__(self) -> Any:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def select(self, features: int, length: int) -> list[PlanEntry]:
        """The entries a text with these feature bits (see :func:`text_features`) and this length
        can need, in order."""
        if length > self._longest:
            length = self._longest
        key = features | length << _FEATURE_BITS
        selected = self._selected.get(key)
        if selected is None:
            if not self._dispatch:
                features = _ALL_FEATURES
            selected = [
                entry for entry, members in zip(self.entries, self._requires)
                if entry.min_width <= length
                and any(all(bits & features for bits in member) for member in members)
            ]  # fmt: skip
            if len(self._selected) > 8192:
                self._selected.clear()
            self._selected[key] = selected
        return selected


#: Feature bits of a text (:func:`text_features`): one per character of NEED_CHARS, then "a digit",
#: then "an ASCII capital letter".
_DIGIT_FEATURE = 1 << len(NEED_CHARS)
_CAPITAL_FEATURE = 2 << len(NEED_CHARS)
_FEATURE_BITS = len(NEED_CHARS) + 2
_ALL_FEATURES = (1 << _FEATURE_BITS) - 1
assert NEED_CHARS == "=:@_-./", "text_features tests these characters in this order"


def text_features(text: str, text_shape: bytes | None) -> int:
    """Which of NEED_CHARS occur in ``text`` (bit ``i`` for ``NEED_CHARS[i]``), and whether a digit
    and an ASCII capital letter do (ASCII text: a ``0``, an ``A`` in its shape; other text is
    assumed to hold both)."""
    if text_shape is None:
        classes = _DIGIT_FEATURE | _CAPITAL_FEATURE
    else:
        # An int is looked for in bytes directly (a bytes needle first fails as an int, which
        # costs an exception).
        classes = (_DIGIT_FEATURE if 48 in text_shape else 0) | (_CAPITAL_FEATURE if 65 in text_shape else 0)
    return (
        ("=" in text) | (":" in text) << 1 | ("@" in text) << 2 | ("_" in text) << 3 | ("-" in text) << 4
        | ("." in text) << 5 | ("/" in text) << 6 | classes
    )  # fmt: skip


def _feature_requirements(detector: Detector) -> tuple[int, ...]:
    """A detector's :attr:`~Detector.needs` as feature bits: each must meet the text's."""
    required = []
    for alternatives in detector.needs:
        bits = 0
        for char in alternatives:
            index = NEED_CHARS.find(char)
            if index < 0 or len(char) != 1:
                bits = _ALL_FEATURES  # not a feature: no requirement
                break
            bits |= 1 << index
        required.append(bits)
    if detector.needs_digit:
        required.append(_DIGIT_FEATURE)
    if detector.needs_capital:
        required.append(_CAPITAL_FEATURE)
    return tuple(required)


class DetectorGroup:
    """Detectors sharing a ``lead`` (``\\d``: card, SSN, IPv4), found in one pass of one regex.

    In ASCII text the regex is tried only where a match can start (:meth:`starts`): at a digit
    that its member's look-behind allows (SSN and IPv4: not after a word character; a card: not
    after a digit, ``.`` or ``-``) and that begins one of the member's shape anchors
    (``000-00-0000``, ``0.``) or, for members that are long runs of digits, spaces and dashes (a
    card: ``min_run``), such a run. Those places are found in the text's shape by one regex, so
    a card look-alike inside a long digit run is tried once."""

    def __init__(self, lead: str, members: tuple[Detector, ...]) -> None:
        self.lead = lead
        self.members = members
        # When every member's look-behind says "not after a word character": checked once, first.
        self.shared = f"(?<!\\w{lead})" if all(d.pattern.startswith("(?<![\\w") for d in members) else ""
        alternatives = "|".join(f"(?P<_d{index}>{d.pattern})" for index, d in enumerate(members))
        self.compiled = re.compile(f"{lead}{self.shared}(?:{alternatives})")
        # Where a match can start, read in the shape: a digit (``0``) its member's look-behind
        # allows, followed by the rest of one of the member's anchors or its run.
        starts: list[bytes] | None = []
        for d in members:
            behind = _shape_look_behind(d.pattern, lead)
            ahead = []
            if d.anchors and d.anchor_in == "shape":
                for literal, offset in d.anchors:
                    if offset or not isinstance(literal, bytes) or not literal.startswith(b"0"):
                        ahead = []
                        break
                    ahead.append(re.escape(literal[1:]))
            elif d.min_run:
                ahead.append(b"[0 \\-]{%d}" % (d.min_run - 1))
            if behind is None or not ahead:
                starts = None
                break
            starts.append(b"(?<!" + behind + b"0)(?=" + b"|".join(ahead) + b")")
        #: Whether :meth:`starts` holds every place a match can start (else: search the text).
        self.anchored = (
            lead == r"\d" and bool(starts)
            and not any(d.keyed or d.extend_left or "value" in d.compiled.groupindex for d in members)
        )  # fmt: skip
        self._starts = re.compile(b"0(?:" + b"|".join(starts) + b")") if self.anchored and starts else None

    def starts(self, text_shape: bytes) -> list[int]:
        """Every place in the ASCII text with this shape where a match can start, in order (a
        superset: the regex decides)."""
        return [found.start() for found in self._starts.finditer(text_shape)]  # type: ignore[union-attr]


#: A member's leading look-behind ``(?<![...]\\d)`` and the shape characters of its class.
_LOOK_BEHIND = re.compile(r"\(\?<!\[((?:\\[wd]|[.\-]|\\-)+)\]\\d\)")
_SHAPE_OF_CLASS = {"\\w": b"0Aa", "\\d": b"0", ".": b".", "-": b"\\-", "\\-": b"\\-"}


def _shape_look_behind(pattern: str, lead: str) -> bytes | None:
    """``(?<![\\w-]\\d)`` -> ``[0Aa\\-]``: the class of characters a match's lead digit may not
    follow, in shape characters (digits ``0``, letters and ``_`` ``A``/``a``); None if the
    pattern does not start with such a look-behind."""
    found = _LOOK_BEHIND.match(pattern) if lead == r"\d" else None
    if found is None:
        return None
    shape = b"".join(_SHAPE_OF_CLASS[token] for token in re.findall(r"\\[wd]|\\-|[.\-]", found.group(1)))
    return b"[" + shape + b"]"


def _min_width(compiled: re.Pattern[str]) -> int:
    try:
        from re import _parser as sre_parse  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_parse  # type: ignore[no-redef]
    try:
        return int(sre_parse.parse(compiled.pattern, compiled.flags).getwidth()[0])
    except Exception:  # noqa: BLE001 - an estimate only; 0 means "always scan"
        return 0


def plan_entries(detectors: tuple[Detector, ...]) -> list[PlanEntry]:
    """One entry per detector, except detectors sharing a ``lead`` (``\\d``), which are found in
    a single pass (:class:`DetectorGroup`). Each entry carries the shortest text it can match, so short
    values skip it, the cheap checks that must pass before its regex runs (literals, exact or
    lower-cased; a gate on the text; a gate on the text's shape) and where its matches start
    (anchors), so the regex is tried there only."""
    items: list[Detector | DetectorGroup] = []
    by_lead: dict[str, list[Detector]] = {}
    for detector in detectors:
        if detector.lead:
            by_lead.setdefault(detector.lead, []).append(detector)
        else:
            items.append(detector)
    for lead, members in by_lead.items():
        items.append(members[0] if len(members) == 1 else DetectorGroup(lead, tuple(members)))
    entries: list[PlanEntry] = []
    for item in items:
        literals: tuple[str, ...] | None = None
        lower_literals: tuple[str, ...] = ()
        gate = shape_gate = keyed = anchored = None
        if isinstance(item, DetectorGroup):
            compiled, group = item.compiled, item.members
            anchored = item  # where its regex is tried: DetectorGroup.starts
        else:
            detector = item
            compiled, group = detector.compiled, (detector,)
            if detector.prefilter or detector.prefilter_lower:
                literals, lower_literals = detector.prefilter, detector.prefilter_lower
            gate = detector.gate
            shape_gate = detector.shape_gate
            if detector.anchors:
                anchored = (detector.anchors, detector.anchor_in)
            if detector.keyed and detector.accept is None and not detector.extend_left and detector.pattern.startswith("[:=]"):
                keyed = detector
        entries.append(PlanEntry(
            compiled, group, _min_width(compiled), literals, lower_literals, gate, shape_gate, keyed, anchored,
            literals is None and gate is None and shape_gate is None and keyed is None and anchored is None,
        ))  # fmt: skip
    return entries
