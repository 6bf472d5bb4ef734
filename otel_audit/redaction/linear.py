"""Policy regexes that cannot hang the app: a check at load and a linear-time engine at run time.

A ``custom_detectors`` pattern comes from a policy file, not from this package's reviewed list, so
two things hold for it:

* :func:`superlinear_construct` rejects, at load, what makes a backtracking engine take
  exponential or polynomial time: nested quantifiers (``(a+)+``), alternatives that can start
  with the same character under a quantifier (``(a|ab)*``), backreferences; and the lookarounds
  the linear engine cannot run. The policy error names the detector and the construct.
* :class:`LinearPattern` runs the pattern on RE2 (``google-re2``), whose matching time is linear
  in the text whatever the pattern, behind the small part of :class:`re.Pattern` the engine uses.
  Each text is encoded once per scan (:meth:`LinearPattern.searcher`), not once per candidate.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from itertools import accumulate
from typing import Any

try:
    from re import _constants as _sre  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

try:
    import re2 as _re2
except ImportError:  # pragma: no cover - google-re2 is a dependency; a broken install says so
    _re2 = None

_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT} | ({_sre.POSSESSIVE_REPEAT} if hasattr(_sre, "POSSESSIVE_REPEAT") else set())
_UNBOUNDED = _sre.MAXREPEAT
_ANY_CHAR = frozenset(range(129))  # ASCII code points, and 128 for "any non-ASCII character"


def superlinear_construct(pattern: str, flags: int = 0) -> str | None:
    """What in ``pattern`` can make matching super-linear (or cannot run in linear time), said for
    a policy author; None when there is nothing."""
    try:
        parsed = _sre_parse.parse(pattern, flags)
    except re.error:
        return None  # the caller reports the syntax error itself
    ignore_case = bool(parsed.state.flags & re.IGNORECASE) or "(?i" in pattern
    return _walk(list(parsed), inside_repeat=False, inside_unbounded=False, ignore_case=ignore_case)


def _walk(items: list[Any], inside_repeat: bool, inside_unbounded: bool, ignore_case: bool) -> str | None:
    for op, av in items:
        if op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
            return "a backreference (matching it can take exponential time; the linear engine has none)"
        if op in (_sre.ASSERT, _sre.ASSERT_NOT):
            return "a lookahead or lookbehind (the linear-time engine has none; use \\b or a validator)"
        if op in _REPEATS:
            low, high, body = av
            variable = high != low
            if (inside_unbounded and variable) or (inside_repeat and high == _UNBOUNDED):
                return "a nested quantifier such as (a+)+ (a quantified group holding a variable-length quantifier can take exponential time)"
            found = _walk(
                list(body), inside_repeat or high > 1, inside_unbounded or high == _UNBOUNDED, ignore_case
            )
            if found:
                return found
            if high > 1 and _overlapping_branches(list(body), ignore_case):
                return "alternatives that can start with the same character under a quantifier, such as (a|ab)+"
        elif op == _sre.SUBPATTERN:
            found = _walk(list(av[-1]), inside_repeat, inside_unbounded, ignore_case)
            if found:
                return found
        elif op == _sre.BRANCH:
            for branch in av[1]:
                found = _walk(list(branch), inside_repeat, inside_unbounded, ignore_case)
                if found:
                    return found
            if inside_repeat and _branches_overlap(av[1], ignore_case):
                return "alternatives that can start with the same character under a quantifier, such as (a|ab)+"
    return None


def _overlapping_branches(body: list[Any], ignore_case: bool) -> bool:
    """A quantified body that is (or starts with a group that is) an alternation whose branches overlap."""
    for op, av in body:
        if op == _sre.BRANCH:
            return _branches_overlap(av[1], ignore_case)
        if op == _sre.SUBPATTERN:
            return _overlapping_branches(list(av[-1]), ignore_case)
        return False
    return False


def _branches_overlap(branches: list[Any], ignore_case: bool) -> bool:
    seen: set[int] = set()
    for branch in branches:
        if _can_be_empty(list(branch)):
            return True  # ``(a|aa)+`` is parsed as ``(a(?:|a))+``: an empty branch overlaps what follows
        first = _first_chars(list(branch), ignore_case)
        if first & seen:
            return True
        seen |= first
    return False


def _first_chars(items: list[Any], ignore_case: bool) -> frozenset[int]:
    """The characters a match of ``items`` can start with (ASCII, and 128 for non-ASCII); a
    superset. An item that can match empty lets the next one start too."""
    out: set[int] = set()
    for op, av in items:
        if op == _sre.AT:
            continue
        if op == _sre.LITERAL:
            chars = {av if av < 128 else 128}
            if ignore_case and av < 128:
                chars |= {ord(chr(av).lower()), ord(chr(av).upper())}
            return frozenset(out | chars)
        if op == _sre.IN:
            return frozenset(out | _class_chars(av, ignore_case))
        if op == _sre.SUBPATTERN:
            first = _first_chars(list(av[-1]), ignore_case)
            out |= first
            if not _can_be_empty(list(av[-1])):
                return frozenset(out)
            continue
        if op == _sre.BRANCH:
            for branch in av[1]:
                out |= _first_chars(list(branch), ignore_case)
            return frozenset(out)  # conservatively: as if no branch were empty
        if op in _REPEATS:
            out |= _first_chars(list(av[2]), ignore_case)
            if av[0] > 0:
                return frozenset(out)
            continue
        return _ANY_CHAR  # ANY, NOT_LITERAL, categories outside a class, ...: anything
    return frozenset(out)


def _can_be_empty(items: list[Any]) -> bool:
    return all(op == _sre.AT or (op in _REPEATS and av[0] == 0) for op, av in items)


_CATEGORIES = {
    _sre.CATEGORY_DIGIT: str.isdigit, _sre.CATEGORY_SPACE: str.isspace,
    _sre.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
}  # fmt: skip


def _class_chars(items: list[Any], ignore_case: bool) -> frozenset[int]:
    negate = False
    chars: set[int] = set()
    for op, av in items:
        if op == _sre.NEGATE:
            negate = True
        elif op == _sre.LITERAL:
            chars.add(av if av < 128 else 128)
        elif op == _sre.RANGE:
            low, high = av
            chars.update(range(low, min(high, 127) + 1))
            if high >= 128:
                chars.add(128)
        elif op == _sre.CATEGORY:
            name = str(av)
            test = _CATEGORIES.get(av)
            if test is None:  # a NOT_ category: everything the positive one is not, and non-ASCII
                positive = {"CATEGORY_NOT_DIGIT": str.isdigit, "CATEGORY_NOT_SPACE": str.isspace,
                            "CATEGORY_NOT_WORD": lambda c: c.isalnum() or c == "_"}.get(name)  # fmt: skip
                if positive is None:
                    return _ANY_CHAR
                chars.update(i for i in range(128) if not positive(chr(i)))
            else:
                chars.update(i for i in range(128) if test(chr(i)))
            chars.add(128)
        else:
            return _ANY_CHAR
    if ignore_case:
        chars |= {ord(chr(c).swapcase()) for c in chars if c < 128 and chr(c).isalpha()}
    return frozenset(_ANY_CHAR - chars) | {128} if negate else frozenset(chars)


class LinearPattern:
    """A policy's regex on RE2, with the surface of :class:`re.Pattern` the engine's scan uses
    (``search``, ``groupindex``, ``pattern``, ``flags``, ``match``) plus :meth:`searcher`.

    RE2 takes Python's syntax for the constructs :func:`superlinear_construct` lets through,
    except ``\\Z`` (RE2 writes it ``\\z``, translated here); ``\\d``, ``\\w``, ``\\b`` and
    ``\\s`` are ASCII, as documented in docs/redaction.md."""

    __slots__ = ("pattern", "flags", "groupindex", "groups", "_compiled")

    def __init__(self, pattern: str) -> None:
        if _re2 is None:
            raise ImportError("google-re2 is not installed: custom detectors need it (pip install google-re2)")
        options = _re2.Options()
        options.log_errors = False  # RE2 would print the pattern on stderr; the caller reports
        self._compiled = _re2.compile(_to_re2(pattern).encode("utf-8"), options)
        self.pattern = pattern
        self.flags = 0
        # The pattern is compiled for bytes (one encoding per text): its group names are bytes.
        self.groupindex = {name.decode("utf-8"): index for name, index in self._compiled.groupindex.items()}
        self.groups = self._compiled.groups

    def match(self, text: str, position: int = 0) -> Any:
        """Anchored match at ``position`` (for the load-time "matches empty" check)."""
        return self.searcher(text).match(position)

    def search(self, text: str, position: int = 0) -> Any:
        return self.searcher(text)(text, position)

    def searcher(self, text: str) -> "_Searcher":
        """``search(text, position)`` for this one text, encoded once."""
        return _Searcher(self._compiled, self.groupindex, text)


def _to_re2(pattern: str) -> str:
    """Python's ``\\Z`` (end of text) is RE2's ``\\z``; an escaped backslash stays as it is."""
    return re.sub(r"(\\\\)|\\Z", lambda m: m.group(1) or r"\z", pattern)


def compile_error(pattern: str) -> str | None:
    """Why RE2 cannot compile ``pattern`` (its own words), or None."""
    try:
        LinearPattern(pattern)
    except ImportError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - re2.error, or anything its binding raises
        message = exc.args[0] if exc.args else type(exc).__name__
        return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return None


class _Searcher:
    """Searches one text with RE2 on its UTF-8 bytes; positions are mapped to and from characters
    (identical for ASCII; through the characters' byte offsets, computed once, otherwise)."""

    __slots__ = ("_compiled", "_encoded", "_offsets", "_groupindex")

    def __init__(self, compiled: Any, groupindex: dict[str, int], text: str) -> None:
        self._compiled = compiled
        self._groupindex = groupindex
        self._encoded = text.encode("utf-8", "surrogatepass")
        self._offsets: list[int] | None = None
        if len(self._encoded) != len(text):
            self._offsets = [0, *accumulate(len(c.encode("utf-8", "surrogatepass")) for c in text)]

    def __call__(self, text: str, position: int = 0) -> "_Match | None":
        return self._run(self._compiled.search, position)

    def match(self, position: int = 0) -> "_Match | None":
        return self._run(self._compiled.match, position)

    def _run(self, method: Any, position: int) -> "_Match | None":
        offsets = self._offsets
        byte_position = position if offsets is None else offsets[min(position, len(offsets) - 1)]
        found = method(self._encoded, byte_position)
        if found is None:
            return None
        return _Match(found, offsets, self._groupindex)


class _Match:
    """The match surface the engine reads: ``span``/``start``/``end``/``group`` (by name or
    index, only to test for None) and ``lastgroup``, in character positions."""

    __slots__ = ("_found", "_offsets", "_groupindex", "lastgroup")

    def __init__(self, found: Any, offsets: list[int] | None, groupindex: Any) -> None:
        self._found = found
        self._offsets = offsets
        self._groupindex = groupindex
        last = found.lastgroup
        self.lastgroup = last.decode("utf-8") if isinstance(last, bytes) else last

    def _index(self, group: int | str) -> int:
        return self._groupindex[group] if isinstance(group, str) else group

    def span(self, group: int | str = 0) -> tuple[int, int]:
        start, end = self._found.span(self._index(group))
        offsets = self._offsets
        if offsets is None or start < 0:
            return start, end
        return bisect_left(offsets, start), bisect_left(offsets, end)

    def start(self, group: int | str = 0) -> int:
        return self.span(group)[0]

    def end(self, group: int | str = 0) -> int:
        return self.span(group)[1]

    def group(self, group: int | str = 0) -> Any:
        return self._found.group(self._index(group))
