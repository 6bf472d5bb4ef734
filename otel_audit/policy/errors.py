"""Policy errors: every problem names the document, the path inside it, what was expected and,
where the YAML parser knows it, the line and column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from otel_audit.errors import OtelAuditError

_MAX_SHOWN = 60


def shown(value: Any) -> str:
    """A value quoted for an error message, cut short (policies can hold long inline text)."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def format_path(path: Sequence[Any]) -> str:
    """``("rules", 3, "level")`` -> ``rules[3].level``; odd keys are quoted: ``required_fields["a b"]``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and part.replace("_", "a").replace("-", "a").isalnum() and part[:1].isalpha():
            out += f".{part}" if out else part
        else:
            out += f"[{shown(part) if not isinstance(part, str) else repr(part)}]"
    return out


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy document."""

    path: str  # "rules[3].level", or "" for the document as a whole
    message: str  # what is wrong and what was expected
    document: str  # file path, "pack:NAME", "<OTEL_AUDIT_POLICY>" or an env var name
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    @property
    def location(self) -> str:
        if self.line is None:
            return self.document
        return f"{self.document}:{self.line}:{self.column}"

    def __str__(self) -> str:
        prefix = f"{self.path}: " if self.path else ""
        return f"{prefix}{self.message} ({self.location})"


class PolicyError(OtelAuditError):
    """The policy could not be loaded. ``problems`` lists every problem found (at least one)."""

    def __init__(self, problems: Iterable[Problem], failure_mode: str | None = None) -> None:
        self.problems = list(problems)
        #: ``closed`` when the broken document itself asked for fail-closed (so start-up refuses).
        self.failure_mode = failure_mode
        first = str(self.problems[0]) if self.problems else "invalid policy"
        more = len(self.problems) - 1
        super().__init__(first + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""))

    def report(self) -> str:
        """Every problem, one per line."""
        return "\n".join(str(problem) for problem in self.problems)

    @classmethod
    def single(cls, message: str, document: str, path: str = "", line: int | None = None,
               column: int | None = None) -> "PolicyError":
        return cls([Problem(path, message, document, line, column)])
