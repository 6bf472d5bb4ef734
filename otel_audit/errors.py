"""Errors otel-audit raises, and the containment that keeps audit failures out of the host app."""

from __future__ import annotations

import sys
import threading
from collections import Counter


class OtelAuditError(Exception):
    """Base of every error otel-audit raises on purpose."""


class ConfigError(OtelAuditError):
    """An ``OTEL_AUDIT_*`` variable is invalid. The message names the variable, never a secret value."""


class AuditUnavailable(OtelAuditError):
    """A record the policy requires could not be made durable and the fail mode is ``closed``.

    HTTP adapters turn this into a 503 before the view runs, so nothing unaudited happens.
    """


class _Containment:
    """Counts failures inside audit code and reports each kind once on stderr.

    The host application must never break because auditing did: hooks catch everything, call
    :meth:`record`, and carry on.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    def record(self, where: str, exc: BaseException) -> None:
        with self._lock:
            self.counts[where] += 1
            first = where not in self._reported
            self._reported.add(where)
        if first:
            # Type only: an exception message may quote data that is being audited.
            print(
                f"otel-audit: error in {where}: {type(exc).__name__} (contained; the application "
                f"continues; further errors here are counted, not printed)",
                file=sys.stderr,
            )

    def total(self) -> int:
        return sum(self.counts.values())


containment = _Containment()
