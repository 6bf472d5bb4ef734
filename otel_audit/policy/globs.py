"""Route and action globs, compiled once to regular expressions.

Glob language (documented in docs/policy.md): ``*`` any characters including ``/``, ``?`` one
character, ``{name}`` exactly one path segment. Route templates from frameworks are normalised to
the ``{name}`` form first, so ``/users/{id}/roles`` matches Flask's ``/users/<int:id>/roles``,
Django's ``users/<int:pk>/roles`` and Starlette's ``/users/{id:int}/roles`` alike.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Pattern

_TEMPLATE_PARAM = re.compile(r"<(?:[^:<>]+:)?([^:<>]+)>|\{([^{}:]+)(?::[^{}]*)?\}|(?<=/):([A-Za-z_]\w*)")


class GlobError(ValueError):
    """A glob that cannot be compiled; the message says why."""


def glob_to_regex(pattern: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            while index + 1 < len(pattern) and pattern[index + 1] == "*":
                index += 1  # ** is the same as *
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "{":
            end = pattern.find("}", index)
            name = pattern[index + 1 : end] if end != -1 else ""
            if end == -1 or not name or "{" in name or "/" in name:
                raise GlobError(f"unbalanced '{{' at character {index + 1}: write {{name}} for one path segment")
            out.append("[^/]+")
            index = end
        elif char == "}":
            raise GlobError(f"unmatched '}}' at character {index + 1}")
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


def compile_globs(patterns: Iterable[str], ignore_case: bool = False) -> Pattern[str] | None:
    """One regex matching any of ``patterns`` in full (None when there are none)."""
    parts = [glob_to_regex(pattern) for pattern in patterns]
    if not parts:
        return None
    return re.compile("(?:" + "|".join(parts) + r")\Z", re.IGNORECASE if ignore_case else 0)


@lru_cache(maxsize=4096)  # route templates are few; this runs for every request event
def normalise_route(template: str | None) -> str | None:
    """Framework route template -> ``/users/{id}`` form (leading slash added for Django)."""
    if not template:
        return template
    normalised = _TEMPLATE_PARAM.sub(lambda m: "{" + (m.group(1) or m.group(2) or m.group(3)) + "}", template)
    return normalised if normalised.startswith("/") else "/" + normalised
