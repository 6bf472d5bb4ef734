"""Redaction before export (placeholder until the redaction issue lands): masks values under
secret-looking keys, recursively."""

from __future__ import annotations

import re
from typing import Any, Mapping

_SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|api.?key|authorization|cookie|session|csrf", re.I)


class Redactor:
    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> "Redactor":
        return cls()

    def redact_value(self, key: str, value: Any) -> Any:
        if _SECRET_KEY.search(key):
            return "[REDACTED:secret_key]"
        if isinstance(value, dict):
            return {k: self.redact_value(str(k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_value(key, v) for v in value]
        return value

    def redact_attributes(self, attributes: dict[str, Any]) -> dict[str, Any]:
        return {key: self.redact_value(key, value) for key, value in attributes.items()}
