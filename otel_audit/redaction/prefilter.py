"""Optional RE2 multi-pattern prefilter: one linear pass over a text says which detectors can match.

With the ``re2`` extra installed (``pip install otel-audit[re2]``, the ``google-re2`` wheel), the
redactor builds one ``re2.Set`` per :class:`~otel_audit.redaction.engine.Redactor` holding, per
detector, a *necessary condition*: an RE2 pattern that matches every text the detector's Python
regex can match (and possibly more). A text for which no pattern matches is clean; otherwise only
the detectors whose pattern matched are run, with the usual checks and validators, so the result is
exactly the one without the prefilter.

The RE2 pattern is derived from the Python pattern's parse tree, widening whatever RE2 cannot
express or treats differently:

- look-arounds, ``^``/``$``/``\\b``/``\\B`` are dropped (an assertion only removes matches);
- a back-reference becomes "anything"; a conditional group, either branch;
- ``\\d``, ``\\w``, ``\\s`` (Unicode in Python, ASCII in RE2) also take every non-ASCII character;
  in a negated class they stand for their ASCII members only;
- case-insensitive letters take both cases and the non-ASCII characters Python folds onto them
  (``K`` Kelvin sign, ``ſ`` long s, dotted/dotless i); other case-insensitive characters widen to
  every non-ASCII character and every ASCII letter;
- repetition bounds over :data:`MAX_BOUND` become unbounded (RE2 caps counted repetition; the
  bound only removes matches).

A detector whose pattern cannot be converted (or that RE2 refuses) is "always run". When ``re2`` is
not importable, or anything goes wrong while building the set, the redactor uses the pure-Python
path silently. A failure while matching a text (a lone surrogate cannot be encoded as UTF-8) makes
that text take the pure-Python path.
"""

from __future__ import annotations

from typing import Any, Iterable

try:  # the ``re2`` extra
    import re2 as _re2
except Exception:  # noqa: BLE001 - not installed or broken: the pure-Python path
    _re2 = None

try:
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

#: Counted repetition above this becomes unbounded (smaller automaton; only widens the set).
MAX_BOUND = 16
LOW_CAP = 16
#: Memory budget for the set's automaton (RE2's default is 8 MiB).
MAX_MEM = 64 << 20

AVAILABLE = _re2 is not None

_NON_ASCII = (0x80, 0x10FFFF)
#: Non-ASCII characters that Python's case-insensitive matching folds onto ASCII letters
#: (``tests/redaction/test_prefilter.py`` checks this table against every code point).
NON_ASCII_FOLDS: dict[str, tuple[int, ...]] = {
    "i": (0x130, 0x131),
    "k": (0x212A,),
    "s": (0x17F,),
}
_WORD_ASCII = ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A), (0x5F, 0x5F))
_DIGIT_ASCII = ((0x30, 0x39),)
# Python's \s in str patterns: ASCII \t\n\v\f\r, \x1c-\x1f and space, plus non-ASCII spaces.
_SPACE_ASCII = ((0x09, 0x0D), (0x1C, 0x20))


class Unsupported(Exception):
    """A construct the converter does not know: the detector is always run."""


def _complement_ascii(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    position = 0
    for lo, hi in sorted(ranges):
        if lo > position:
            out.append((position, lo - 1))
        position = max(position, hi + 1)
    if position <= 0x7F:
        out.append((position, 0x7F))
    return out


def _category(name: Any) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(over-approximation, under-approximation) of a category as code-point ranges."""
    c = _c
    if name in (c.CATEGORY_DIGIT, c.CATEGORY_UNI_DIGIT):
        return [*_DIGIT_ASCII, _NON_ASCII], list(_DIGIT_ASCII)
    if name in (c.CATEGORY_NOT_DIGIT, c.CATEGORY_UNI_NOT_DIGIT):
        non_digit = _complement_ascii(_DIGIT_ASCII)
        return [*non_digit, _NON_ASCII], non_digit
    if name in (c.CATEGORY_WORD, c.CATEGORY_UNI_WORD):
        return [*_WORD_ASCII, _NON_ASCII], list(_WORD_ASCII)
    if name in (c.CATEGORY_NOT_WORD, c.CATEGORY_UNI_NOT_WORD):
        non_word = _complement_ascii(_WORD_ASCII)
        return [*non_word, _NON_ASCII], non_word
    if name in (c.CATEGORY_SPACE, c.CATEGORY_UNI_SPACE):
        return [*_SPACE_ASCII, _NON_ASCII], list(_SPACE_ASCII)
    if name in (c.CATEGORY_NOT_SPACE, c.CATEGORY_UNI_NOT_SPACE):
        non_space = _complement_ascii(_SPACE_ASCII)
        return [*non_space, _NON_ASCII], non_space
    raise Unsupported(f"category {name}")


def _fold(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Case-insensitive widening of a set of ranges (see the module docstring)."""
    out = list(ranges)
    for lo, hi in ranges:
        if hi > 0x7F:
            out.append(_NON_ASCII)
            out.append((0x41, 0x5A))
            out.append((0x61, 0x7A))
        for code in range(max(lo, 0x41), min(hi, 0x7A) + 1):
            char = chr(code)
            if char.isalpha():
                out.append((ord(char.lower()),) * 2)
                out.append((ord(char.upper()),) * 2)
                for extra in NON_ASCII_FOLDS.get(char.lower(), ()):
                    out.append((extra, extra))
    return out


def _cls(ranges: list[tuple[int, int]], negate: bool = False) -> str:
    if not ranges:
        return "[^\\x00-\\x{10FFFF}]" if not negate else "(?s:.)"
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    body = "".join(f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in merged)
    return f"[{'^' if negate else ''}{body}]"


def _convert(parsed: Any, flags: int) -> str:
    c = _c
    out = []
    for op, av in parsed:
        ignore = bool(flags & c.SRE_FLAG_IGNORECASE)
        if op is c.LITERAL:
            ranges = [(av, av)]
            out.append(_cls(_fold(ranges) if ignore else ranges))
        elif op is c.NOT_LITERAL:
            out.append(_cls([(av, av)], negate=True))
        elif op is c.ANY:
            out.append("(?s:.)" if flags & c.SRE_FLAG_DOTALL else "[^\\n]")
        elif op is c.IN:
            negate = bool(av) and av[0][0] is c.NEGATE
            over: list[tuple[int, int]] = []
            under: list[tuple[int, int]] = []
            for item_op, item in av[1:] if negate else av:
                if item_op is c.LITERAL:
                    over.append((item, item))
                    under.append((item, item))
                elif item_op is c.RANGE:
                    over.append(tuple(item))  # type: ignore[arg-type]
                    under.append(tuple(item))  # type: ignore[arg-type]
                elif item_op is c.CATEGORY:
                    o, u = _category(item)
                    over.extend(o)
                    under.extend(u)
                else:
                    raise Unsupported(f"class item {item_op}")
            if negate:
                out.append(_cls(under, negate=True))
            else:
                out.append(_cls(_fold(over) if ignore else over))
        elif op is c.BRANCH:
            out.append("(?:" + "|".join(_convert(branch, flags) for branch in av[1]) + ")")
        elif op is c.SUBPATTERN:
            _, add_flags, del_flags, sub = av
            out.append("(?:" + _convert(sub, (flags | add_flags) & ~del_flags) + ")")
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) or op is getattr(c, "POSSESSIVE_REPEAT", None):
            low, high, sub = av
            low = min(low, LOW_CAP)
            inner = "(?:" + _convert(sub, flags) + ")"
            if high is c.MAXREPEAT or high > MAX_BOUND:
                out.append(f"{inner}{{{low},}}")
            else:
                out.append(f"{inner}{{{low},{high}}}")
        elif op is getattr(c, "ATOMIC_GROUP", None):
            out.append("(?:" + _convert(av, flags) + ")")
        elif op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            continue  # an assertion only removes matches
        elif op is c.GROUPREF:
            out.append("(?s:.*)")
        elif op is c.GROUPREF_EXISTS:
            _, yes, no = av
            out.append("(?:" + _convert(yes, flags) + "|" + (_convert(no, flags) if no else "") + ")")
        else:
            raise Unsupported(f"opcode {op}")
    return "".join(out)


def necessary_pattern(pattern: str, flags: int = 0) -> str:
    """An RE2 pattern matching (somewhere) every text in which ``re.search(pattern, text, flags)``
    finds a match. Raises :class:`Unsupported` for constructs it does not know."""
    try:
        parsed = _sre_parse.parse(pattern, flags)
    except Exception as exc:  # noqa: BLE001
        raise Unsupported("unparseable") from exc
    return _convert(parsed, parsed.state.flags)


def secret_name_condition() -> str:
    """RE2 pattern for "a name that the key rules call secret, then an optional quote, spaces or
    tabs": what a keyed detector (``secret_assignment``) needs just before its match. A secret
    name, normalised (lower case, ``-``/``_``/``.`` removed), contains one of the exact secret
    names or parts (see ``keys.py``)."""
    from otel_audit.redaction.keys import SECRET_KEY_NAMES, SECRET_KEY_PARTS

    words = sorted(set(SECRET_KEY_NAMES) | {part for part, _ in SECRET_KEY_PARTS}, key=len)
    minimal: list[str] = []
    for word in words:  # a word containing a shorter one adds nothing to "contains"
        if not any(shorter in word for shorter in minimal):
            minimal.append(word)
    alternatives = []
    for word in minimal:
        pieces = []
        for char in word:
            if not char.isascii() or not char.isalnum():
                raise Unsupported(f"secret name {word!r}")
            pieces.append(_cls(_fold([(ord(char), ord(char))])))
        alternatives.append("[-_.]*".join(pieces))
    return "(?:" + "|".join(alternatives) + ")[A-Za-z0-9_.-]*[\"']?[ \t]*"


class Prefilter:
    """One ``re2.Set`` over ``items``' patterns (``(pattern, flags, item)``, in order). Calling it
    with a text returns the items that may match it, in their order (the always-run ones
    included; an empty list: nothing can match), or None when the set could not answer (the
    caller then runs everything)."""

    __slots__ = ("always", "_call")

    def __init__(self, items: list[tuple[str, int, Any]], prefixes: dict[int, str] | None = None) -> None:
        """``prefixes``: per item index, an RE2 pattern that every match of that item's pattern
        is immediately preceded by (a keyed detector's secret name)."""
        prefixes = prefixes or {}
        if _re2 is None:
            raise RuntimeError("re2 is not installed")
        options = _re2.Options()
        options.max_mem = MAX_MEM
        options.log_errors = False
        regex_set = _re2.Set.SearchSet(options)
        always: list[int] = []
        set_to_index: list[int] = []
        for index, (pattern, flags, item) in enumerate(items):
            try:
                regex_set.Add(prefixes.get(index, "") + necessary_pattern(pattern, flags))
            except Exception:  # noqa: BLE001 - unsupported construct or RE2 refused it
                always.append(index)
                continue
            set_to_index.append(index)
        regex_set.Compile()
        self.always = tuple(always)
        mapping = tuple(set_to_index)
        values = tuple(item for _, _, item in items)
        match = regex_set.Match
        none: list[Any] = [values[i] for i in always]
        # The items per answer, cached (few distinct answers occur).
        cache: dict[tuple[int, ...], list[Any]] = {}

        def call(text: str) -> list[Any] | None:
            try:
                hits = match(text)
            except Exception:  # noqa: BLE001 - e.g. a lone surrogate: the caller runs everything
                return None
            if hits is None:
                return none
            key = tuple(hits)
            chosen = cache.get(key)
            if chosen is None:
                if len(cache) > 4096:
                    cache.clear()
                wanted = set(always)
                wanted.update(mapping[i] for i in hits)
                chosen = cache[key] = [values[i] for i in sorted(wanted)]
            return chosen

        self._call = call

    def __call__(self, text: str) -> list[Any] | None:
        return self._call(text)


def build(items: list[tuple[str, int, Any]], keyed: Iterable[int] = ()) -> "Prefilter | None":
    """A :class:`Prefilter`, or None when ``re2`` is missing or the set cannot be built.
    ``keyed``: indices of items whose every match follows a secret name (see
    :func:`secret_name_condition`)."""
    if _re2 is None:
        return None
    try:
        keyed = tuple(keyed)
        prefixes = {}
        if keyed:
            try:
                condition = secret_name_condition()
            except Unsupported:
                condition = ""
            prefixes = {index: condition for index in keyed}
        return Prefilter(items, prefixes)
    except Exception:  # noqa: BLE001 - the pure-Python path
        return None
