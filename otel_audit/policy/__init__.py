"""Audit policy (placeholder until the policy-as-code issue lands): audit everything at metadata.

:func:`load_policy` returns an object with ``id``, ``version``, ``hash``, ``redaction`` (the
policy's redaction section) and ``decide(event) -> Decision | None``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from otel_audit.event import AuditEvent
from otel_audit.pipeline import Decision


class DefaultPolicy:
    id = "otel-audit-default"
    version = "0"

    def __init__(self) -> None:
        self.redaction: dict[str, Any] = {}
        canonical = json.dumps({"id": self.id, "version": self.version, "rules": []}, sort_keys=True)
        self.hash = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
        self._decision = Decision(level="metadata", rule="default")

    def decide(self, event: AuditEvent) -> Decision | None:
        return self._decision


def load_policy(source: str | None = None) -> DefaultPolicy:
    return DefaultPolicy()
