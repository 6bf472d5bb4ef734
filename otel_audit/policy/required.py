"""Required fields: a pipeline step after Enrich that marks records missing what the policy demands.

A record missing a required attribute is still emitted (an incomplete audit record beats none),
marked ``audit.incomplete=true`` with ``audit.incomplete.fields``, and counted per category on
``policy.incomplete``.
"""

from __future__ import annotations

from typing import Any

from otel_audit.pipeline import FACTS, RECORD

from otel_audit.event import AuditEvent


class MarkIncomplete:
    """Pipeline step: check the draft's attributes against ``required_fields`` for the category."""

    reads, writes = (FACTS, RECORD), (RECORD,)

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        fields = dict(getattr(policy, "required_fields", None) or {})
        common = tuple(fields.pop("*", ()))
        self._by_category = {category: tuple(dict.fromkeys(common + names)) for category, names in fields.items()}
        self._common = common

    def __call__(self, event: AuditEvent) -> AuditEvent | None:
        required = self._by_category.get(event.category, self._common)
        if not required:
            return event
        attributes = event.record.attributes
        missing = [name for name in required if attributes.get(name) in (None, "", [], ())]
        if missing:
            attributes["audit.incomplete"] = True
            attributes["audit.incomplete.fields"] = missing
            counter = getattr(self.policy, "incomplete", None)
            if counter is not None:
                counter[event.category] += 1
        return event
