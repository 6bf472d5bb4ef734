"""SQL text sanitising: literals become ``?`` so ``db.query.text`` keeps its shape, not its data.

One left-to-right scan (a single alternation regex, linear time) that recognises comments, quoted
identifiers, string literals (with ``''`` and backslash escapes, ``E''``/``N''``/``X''`` prefixes,
PostgreSQL dollar quoting), hex and numeric literals; placeholders (``?``, ``$1``, ``:name``,
``%s``) are left alone. An unterminated string hides everything after its quote. ``IN (?, ?, ?)``
collapses to ``IN (?)`` so the statement shape does not leak list sizes.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"""
      (?P<comment>--[^\n]*|/\*[\s\S]*?(?:\*/|\Z))
    | (?P<ident>"(?:[^"]|"")*(?:"|\Z)|`[^`]*(?:`|\Z)|\[[^\]\n]*\])
    | (?P<dollar>\$(?P<tag>[A-Za-z_]\w{0,30})?\$[\s\S]*?(?:\$(?P=tag)?\$|\Z))
    | (?P<string>(?<![\w$])[EeNnBbXx]?'(?:[^'\\]|\\[\s\S]|'')*(?:'|\Z))
    | (?P<hex>(?<![\w$])0[xX][0-9A-Fa-f]+)
    | (?P<number>(?<![\w$:?.])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w$]))
    | (?P<word>[A-Za-z_][\w$]*)
    """,
    re.VERBOSE,
)

_IN_LIST = re.compile(r"(?i)\bIN\s*\(\s*\?(?:\s*,\s*\?)+\s*\)")


def _replace(match: re.Match[str]) -> str:
    if match.group("string") is not None or match.group("dollar") is not None:
        return "?"
    if match.group("hex") is not None or match.group("number") is not None:
        return "?"
    return match.group(0)


def sanitize_sql(text: str) -> str:
    """``INSERT INTO t VALUES ('bob@example.com', 42)`` -> ``INSERT INTO t VALUES (?, ?)``."""
    replaced = _TOKEN.sub(_replace, text)
    return _IN_LIST.sub("IN (?)", replaced)
