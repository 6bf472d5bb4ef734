"""The redactor: key rules first, then structure (JSON, form bodies, SQL), then value detectors.

Order matters for speed and accuracy: a key rule settles a value without scanning it
(``password`` is masked whatever it holds), short strings and plain numbers skip the scan, and
detectors run only where their prefilter literal occurs. The redactor never raises: unexpected
failures are contained and the record fails closed (every non-bookkeeping value masked).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

from otel_audit.errors import ConfigError, containment
from otel_audit.redaction.detectors import NEED_CHARS, SHAPE_TABLE, Detector
from otel_audit.redaction.keys import PROTECTED, URL_PARAM_NAMES, builtin_key_rule, is_secret_name, normalise
from otel_audit.redaction.settings import RedactionSettings
from otel_audit.redaction.sql import sanitize_sql
from otel_audit.redaction.validators import payment_card

try:  # the optional native scan loop (Rust, built when the package is installed with cargo present)
    from otel_audit.redaction._scanner import Scanner as _NativeScanner
except ImportError:  # pragma: no cover - exercised where the extension is not built
    _NativeScanner = None

#: Strings shorter than this cannot hold anything a detector finds (shortest: ``a@b.io``).
MIN_SCAN_LENGTH = 6
#: Longer strings are cut here (and marked) before scanning: what was not scanned never leaves.
MAX_SCAN_LENGTH = 256 * 1024
MAX_DEPTH = 32
MAX_NODES = 20_000
#: Validator rejections per detector per string before the string is masked whole (adversarial input).
MAX_REJECTIONS = 2_000

#: ``false`` scans every text in Python even when the native scanner is built (for comparison).
NATIVE_ENV = "OTEL_AUDIT_NATIVE_SCAN"
KEY_ENV = "OTEL_AUDIT_HMAC_KEY"
KEY_ID_ENV = "OTEL_AUDIT_HMAC_KEY_ID"
URL_ATTRIBUTES = frozenset({"url.query", "url.full", "http.url", "http.target", "url.original"})

_DROP = object()
#: What the redactor writes in place of a value: ``[REDACTED:label]``, ``[REDACTED:label:shown]``
#: (partial), ``[HMAC:<20 hex digits>]``. Text already in this form is not redacted again.
REDACTION_MARKER = re.compile(r"\[(?:REDACTED:[A-Za-z0-9_.\-]{1,64}(?::[^\]\s]{1,64})?|HMAC:[0-9a-f]{20})\]")
#: Overlapping findings become one region with the strictest of their actions: a DSN password
#: that the e-mail detector also reads as ``password@host`` is masked, not pseudonymised.
_ACTION_STRICTNESS = {"drop": 4, "mask": 3, "hmac": 2, "partial": 1}
_FORM = re.compile(r"[^=&\s]{1,256}=[^&\s]*(?:&[^=&\s]{1,256}=[^&\s]*){0,1000}")
_NOTHING = object()
_PROTECTED_PLAN = ("protected",)
_KEEP_PLAN = ("keep",)
_VALUE_PLAN = ("value",)
#: Keys whose values take the general path (SQL sanitising, URL context, bound parameters).
_SPECIAL_VALUE_KEYS = frozenset({"db.query.text", "db.query.parameters"} | URL_ATTRIBUTES)
#: A string starting with one of these may be JSON (parsed and walked, not only scanned).
_STRUCTURED_START = frozenset("{[ \t\r\n")


class _HmacKey:
    """The pseudonym key: from ``OTEL_AUDIT_HMAC_KEY``, or one random key per process (said once)."""

    _ephemeral: tuple[bytes, str] | None = None
    _lock = threading.Lock()

    @classmethod
    def ephemeral(cls) -> tuple[bytes, str]:
        with cls._lock:
            if cls._ephemeral is None:
                key = secrets.token_bytes(32)
                key_id = f"ephemeral-{os.getpid()}-{secrets.token_hex(4)}"
                cls._ephemeral = (key, key_id)
                print(
                    f"otel-audit: {KEY_ENV} is not set; pseudonyms (hmac) use a random key for this process "
                    f"only (key id {key_id}): they correlate within this process, not across restarts. "
                    f"Set {KEY_ENV} (and {KEY_ID_ENV}) to keep them stable.",
                    file=sys.stderr,
                )
            return cls._ephemeral


_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256 (RFC 2104) as two SHA-256 states, the key's inner and outer pads already
    hashed: ``HMAC(key, m)`` is ``outer.copy()`` updated with the digest of ``inner.copy()``
    updated with ``m``. Four C calls per value instead of :mod:`hmac`'s Python-level copy,
    update and hexdigest (same digest, checked against :func:`hmac.new`)."""
    if len(key) > 64:  # the SHA-256 block size
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


def key_id_for(key: bytes) -> str:
    """A key id derived from the key (not reversible) when ``OTEL_AUDIT_HMAC_KEY_ID`` is unset."""
    return "k-" + hmac.new(key, b"otel-audit key id", hashlib.sha256).hexdigest()[:12]


@dataclass
class RedactionResult:
    attributes: dict[str, Any]
    body: Any
    count: int = 0
    fields: list[str] = field(default_factory=list)
    key_id: str | None = None  # set when a pseudonym was written

    def summary(self, always: bool = True) -> dict[str, Any]:
        """``audit.redaction.*`` attributes (never values): count always, fields/key id when used."""
        if not self.count and not always:
            return {}
        out: dict[str, Any] = {"audit.redaction.count": self.count}
        if self.fields:
            out["audit.redaction.fields"] = list(self.fields)
        if self.key_id:
            out["audit.redaction.key_id"] = self.key_id
        return out


class _Pass:
    """State of one redaction call."""

    __slots__ = ("count", "nodes", "drop_attribute", "used_hmac", "replacements", "seen")

    def __init__(self) -> None:
        self.count = 0
        self.nodes = 0
        self.drop_attribute = False
        self.used_hmac = False
        self.replacements: dict[str, str] = {}
        self.seen: set[int] = set()


class Redactor:
    """Policy-driven redaction of audit records (and, opt-in, of every application log record)."""

    def __init__(self, settings: RedactionSettings, key: bytes | None = None, key_id: str | None = None) -> None:
        self.settings = settings
        self._key = key
        self._key_id = key_id or (key_id_for(key) if key else None)
        self._detectors: tuple[Detector, ...] = settings.detectors
        self._actions = settings.detector_actions
        self._plan = _Plan(_scan_plan(settings.detectors), native=_native_enabled())
        #: The card detector in use (its spans are checked against hex ids: _inside_hex_id).
        self._card = next((d for d in settings.detectors if d.name == "credit_card"), None)
        # Hot-path caches. Attribute keys repeat on every record, so what a key means (protected,
        # an action, or a value to scan) is worked out once per key. Short strings that were
        # scanned and found clean (routes, user agents, summaries) are remembered too; strings
        # with findings are never cached, so no secret is kept here.
        self._hmac: Any = None  # keyed HMAC state, made on first use
        self._key_plans: dict[str, tuple[Any, ...]] = {}
        self._clean_texts: set[str] = set()
        self._clean_sql: set[str] = set()  # db.query.text values without literals, found clean
        self._record_plans: dict[tuple[str, ...], list[tuple[str, tuple[Any, ...]]]] = {}
        # Key rules by field name (JSON keys, form names; names leave the process unchanged anyway),
        # one cache for URL context (where ``code``/``sig``/``key`` are secret too) and one without.
        self._key_rules: tuple[dict[str, Any], dict[str, Any]] = ({}, {})

    def forget_clean_values(self) -> None:
        """Forget which texts were already found clean, so the next call scans them again.

        For measurements on unique records: a corpus timed over several passes would otherwise
        be answered from this cache from its second pass on, which real traffic with unique
        values would not be."""
        self._clean_texts.clear()
        self._clean_sql.clear()

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None) -> "Redactor":
        """Build from the policy's ``redaction:`` section; the HMAC key comes from the environment."""
        env = os.environ if environ is None else environ
        raw_key = env.get(KEY_ENV) or None
        if raw_key is not None and len(raw_key) < 16:
            raise ConfigError(f"{KEY_ENV}: <hidden> is invalid: expected at least 16 characters")
        return cls(
            RedactionSettings.parse(section),
            key=raw_key.encode("utf-8") if raw_key else None,
            key_id=env.get(KEY_ID_ENV) or None,
        )

    @property
    def scan_mode(self) -> str:
        """How texts are scanned, said in a line (``otel-audit policy validate`` prints it)."""
        if self._plan.native is not None:
            return "native (non-ASCII text in Python)"
        if _NativeScanner is None:
            return "Python (the native scan loop is not built: install with cargo present)"
        if not _native_enabled():
            return f"Python ({NATIVE_ENV}=false)"
        custom = sorted(d.name for d in self._detectors if d.kind == "custom")
        if custom:
            return f"Python (custom detectors: {', '.join(custom)})"
        return "Python"

    def __repr__(self) -> str:  # never show the key
        return f"Redactor(detectors={len(self._detectors)}, key_id={self._key_id!r})"

    # ------------------------------------------------------------------ public API

    def redact_attributes(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Cleaned copy of ``attributes`` (no summary attributes added)."""
        return self.redact(attributes).attributes

    def redact(
        self,
        attributes: Mapping[str, Any] | None,
        body: Any = _NOTHING,
        *,
        category: str | None = None,
        level: str | None = None,
        audit_record: bool = True,
    ) -> RedactionResult:
        """Redact a record. ``category``/``level`` select allow-list rules; ``audit_record=False``
        (application logs) skips the allow-list and the bound-parameter rule. Never raises."""
        try:
            return self._redact(attributes or {}, body, category, level, audit_record)
        except Exception as exc:  # noqa: BLE001 - fail closed, never break the caller
            containment.record("redaction", exc)
            safe: dict[str, Any] = {}
            try:
                for key, value in dict(attributes or {}).items():
                    safe[key] = value if PROTECTED.matches(str(key)) else "[REDACTED:redaction_error]"
            except Exception:  # noqa: BLE001
                safe = {}
            out_body = None if body is _NOTHING or body is None else "[REDACTED:redaction_error]"
            return RedactionResult(safe, out_body, count=len(safe), fields=["<redaction_error>"])

    def redact_text(self, text: str) -> str:
        """Detectors and structure parsing over one string (used by tests and the benchmark)."""
        return self._text(text, _Pass(), 0, url_context=False)

    # ------------------------------------------------------------------ records

    def _redact(
        self, attributes: Mapping[str, Any], body: Any, category: str | None, level: str | None, audit_record: bool
    ) -> RedactionResult:
        settings = self.settings
        state = _Pass()
        allow = settings.allow_list(category, level) if audit_record and settings.allow else None
        if allow is None and type(attributes) is dict:
            out, fields = self._redact_planned(attributes, state, level, audit_record)
        else:
            out, fields = self._redact_each(attributes, state, allow, level, audit_record)
        result_body = body
        if body is not _NOTHING and body is not None:
            if type(body) is str and not state.replacements and self._unchanged_text(body):
                pass  # nothing to replace, nothing a detector can change
            else:
                before = state.count
                state.drop_attribute = False
                result_body = self._body(body, state)
                if state.drop_attribute:
                    result_body = "[REDACTED:dropped]"
                if state.count != before:
                    fields.append("body")
        result = RedactionResult(out, None if body is _NOTHING else result_body, state.count, fields)
        if state.used_hmac:
            result.key_id = self._key_id or _HmacKey.ephemeral()[1]
        return result

    def _unchanged_text(self, text: str) -> bool:
        """True when ``_text`` would return ``text`` unchanged without counting anything: too
        short to scan, or already found clean and neither JSON nor a form body."""
        return len(text) < MIN_SCAN_LENGTH or (
            text in self._clean_texts and text[0] not in _STRUCTURED_START and ("=" not in text or " " in text)
        )

    def _record_plan(self, attributes: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]] | None:
        """The attributes of a record with these keys that need work (neither protected nor
        kept), cached per key set; None when a key is not a string."""
        keys = tuple(attributes)
        work = self._record_plans.get(keys)
        if work is None:
            plans = self._key_plans
            work = []
            for key in keys:
                if type(key) is not str:
                    return None
                plan = plans.get(key)
                if plan is None:
                    plan = self._plan_for_key(key)
                if plan is not _PROTECTED_PLAN and plan is not _KEEP_PLAN:
                    work.append((key, plan))
            if len(self._record_plans) > 256:
                self._record_plans.clear()
            self._record_plans[keys] = work
        return work

    def _redact_planned(
        self, attributes: dict[str, Any], state: _Pass, level: str | None, audit_record: bool
    ) -> tuple[dict[str, Any], list[str]]:
        """No allow-list: a copy of the record in which only the attributes that need work are
        looked at (protected and kept ones are copied as they are, in place)."""
        work = self._record_plan(attributes)
        if work is None:
            return self._redact_each(attributes, state, None, level, audit_record)
        out = dict(attributes)
        fields: list[str] = []
        for key, plan in work:
            value = out[key]
            if plan is _VALUE_PLAN:  # fast paths, same outcome as _attribute
                kind = type(value)
                if kind is str:
                    if self._unchanged_text(value):
                        state.nodes += 1
                        continue
                elif kind is int:
                    if -(10**12) < value < 10**12:
                        state.nodes += 1
                        continue
                elif kind is list and len(value) <= 64 and state.nodes < MAX_NODES:
                    for item in value:
                        if type(item) is not str or not self._unchanged_text(item):
                            break
                    else:
                        state.nodes += 1 + len(value)
                        out[key] = list(value)
                        continue
            before = state.count
            state.drop_attribute = False
            if audit_record and key == "db.query.parameters" and level != "full":
                state.count += 1
                fields.append(key)
                del out[key]
                continue
            cleaned = self._attribute(key, value, state, plan)
            if cleaned is _DROP or state.drop_attribute:
                state.count += 1 if state.count == before else 0
                fields.append(key)
                del out[key]
                continue
            out[key] = cleaned
            if state.count != before:
                fields.append(key)
        return out, fields

    def _redact_each(
        self, attributes: Mapping[str, Any], state: _Pass, allow: list[Any] | None, level: str | None, audit_record: bool
    ) -> tuple[dict[str, Any], list[str]]:
        out: dict[str, Any] = {}
        fields: list[str] = []
        plans = self._key_plans
        for raw_key, value in attributes.items():
            key = raw_key if type(raw_key) is str else str(raw_key)
            plan = plans.get(key)
            if plan is None:
                plan = self._plan_for_key(key)
            if plan is _PROTECTED_PLAN:
                out[key] = value
                continue
            before = state.count
            state.drop_attribute = False
            if allow is not None and not any(globs.matches(key) for globs in allow):
                state.count += 1
                fields.append(key)
                continue
            if audit_record and key == "db.query.parameters" and level != "full":
                state.count += 1
                fields.append(key)
                continue
            cleaned = self._attribute(key, value, state, plan)
            if cleaned is _DROP or state.drop_attribute:
                state.count += 1 if state.count == before else 0
                fields.append(key)
                continue
            out[key] = cleaned
            if state.count != before:
                fields.append(key)
        return out, fields

    def _plan_for_key(self, key: str) -> tuple[Any, ...]:
        """What an attribute key means, independent of its value (cached per key)."""
        if PROTECTED.matches(key):
            plan: tuple[Any, ...] = _PROTECTED_PLAN
        else:
            action = self.settings.attribute_action(key)
            if action is not None:
                plan = _KEEP_PLAN if action == "keep" else ("action", action, key)
            else:
                rule = self._key_rule(key, url_context=False)
                if rule is not None:
                    plan = _KEEP_PLAN if rule[1] == "keep" else ("action", rule[1], rule[0])
                elif key in _SPECIAL_VALUE_KEYS:
                    plan = ("value", key)  # SQL text, URLs, bound parameters: the general path
                else:
                    plan = _VALUE_PLAN
        if len(self._key_plans) > 4096:
            self._key_plans.clear()
        self._key_plans[key] = plan
        return plan

    def _attribute(self, key: str, value: Any, state: _Pass, plan: tuple[Any, ...] | None = None) -> Any:
        if plan is None:
            plan = self._plan_for_key(key)
        if plan[0] == "keep":
            return value
        if plan[0] == "action":
            return self._apply_remembering(plan[1], plan[2], value, state)
        if key == "db.query.text" and isinstance(value, str) and not self.settings.sql_raw_text:
            clean_sql = self._clean_sql
            if value in clean_sql:  # seen before: no literal, nothing a detector changes
                state.nodes += 1
                return value
            before = state.count
            sanitized = sanitize_sql(value)
            if sanitized != value:
                state.count += 1
            cleaned = self._value(sanitized, state, 0, url_context=False)
            if cleaned == value and state.count == before and len(value) <= 4096:
                if len(clean_sql) > 1024:
                    clean_sql.clear()
                clean_sql.add(value)
            return cleaned
        return self._value(value, state, 0, url_context=key in URL_ATTRIBUTES)

    def _apply_remembering(self, action: str, label: str, value: Any, state: _Pass) -> Any:
        """Apply an attribute-level action and remember string replacements for the body
        (a pseudonymised ``user.name`` must not survive in the one-line summary)."""
        result = self._apply(action, label, value, state)
        if isinstance(value, str) and len(value) >= 3:
            state.replacements[value] = result if isinstance(result, str) else f"[REDACTED:{label}]"
        return result

    def _body(self, body: Any, state: _Pass) -> Any:
        if isinstance(body, str):
            for raw, replacement in state.replacements.items():
                if raw in body:
                    body = body.replace(raw, replacement)
                    state.count += 1
            return self._text(body, state, 0, url_context=False)
        return self._value(body, state, 0, url_context=False)

    # ------------------------------------------------------------------ key rules and actions

    def _key_rule(self, key: str, url_context: bool) -> tuple[str, str] | None:
        cache = self._key_rules[url_context]
        hit = cache.get(key, _NOTHING)
        if hit is _NOTHING:
            if len(cache) > 4096:
                cache.clear()
            hit = cache[key] = self._key_rule_uncached(key, url_context)
        return hit  # type: ignore[return-value]

    def _key_rule_uncached(self, key: str, url_context: bool) -> tuple[str, str] | None:
        for rule in self.settings.key_rules:
            if rule.matches(key):
                return "key_rule", rule.action
        last = key.rsplit(".", 1)[-1] if "." in key else key
        hit = builtin_key_rule(last)
        if hit is None and last is not key:
            hit = builtin_key_rule(key)
        if hit is None and url_context and normalise(key) in URL_PARAM_NAMES:
            hit = ("secret_key", "mask")
        return hit

    def _apply(self, action: str, label: str, value: Any, state: _Pass) -> Any:
        if value is None:
            return None
        if action == "drop":
            state.count += 1
            return _DROP
        if type(value) is str and value[:1] == "[" and REDACTION_MARKER.fullmatch(value):
            return value  # already redacted (a record redacted twice stays as it was)
        if isinstance(value, (list, tuple)):
            return [self._apply(action, label, item, state) for item in value if item is not None]
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value).decode("utf-8", "replace")
        state.count += 1
        if action == "hmac":
            if not isinstance(value, str):
                value = _canonical(value)
            return self._pseudonym(label, value, state)
        if action == "partial" and isinstance(value, str):
            return _partial(label, value)
        return f"[REDACTED:{label}]"

    def _pseudonym(self, label: str, value: str, state: _Pass) -> str:
        keyed = self._hmac
        if keyed is None:
            key = self._key
            if key is None:
                if self.settings.hmac_missing_key == "mask":
                    return f"[REDACTED:{label}]"
                key = _HmacKey.ephemeral()[0]
            # The keyed states (inner and outer pads hashed) are made once and copied per value.
            keyed = self._hmac = _hmac_pads(key)
        state.used_hmac = True
        # No label in the pseudonym: the same e-mail as enduser.id, in a body or in SQL parameters
        # yields the same string, so records join on exact equality.
        inner = keyed[0].copy()
        inner.update(value.encode("utf-8", "surrogatepass"))
        outer = keyed[1].copy()
        outer.update(inner.digest())
        return f"[HMAC:{outer.hexdigest()[:20]}]"

    # ------------------------------------------------------------------ values

    def _value(self, value: Any, state: _Pass, depth: int, url_context: bool) -> Any:
        state.nodes += 1
        kind = type(value)
        if kind is str:
            return self._text(value, state, depth, url_context)
        if value is None or kind is bool or kind is float or isinstance(value, (bool, float)):
            return value
        if isinstance(value, str):
            return self._text(value, state, depth, url_context)
        if isinstance(value, int):
            if value >= 10**12 or value <= -(10**12):
                digits = str(abs(value))
                if payment_card(digits) == len(digits):
                    return self._detector_replacement(self._card_detector(), digits, state)
            return value
        if state.nodes > MAX_NODES:
            state.count += 1
            return "[REDACTED:too_large]"
        if depth >= MAX_DEPTH:
            state.count += 1
            return "[REDACTED:too_deep]"
        if kind is not list and kind is not tuple and (kind is dict or isinstance(value, Mapping)):
            marker = id(value)
            if marker in state.seen:
                state.count += 1
                return "[REDACTED:cycle]"
            state.seen.add(marker)
            try:
                out: dict[Any, Any] = {}
                named = _named_secret(value, self)
                for child_key, child in list(value.items()):
                    if named is not None and child_key in _NAMED_VALUE_KEYS:
                        replaced = self._apply(named[1], named[0], child, state)
                        if replaced is not _DROP:
                            out[str(child_key)] = replaced
                        continue
                    name = child_key if isinstance(child_key, str) else str(child_key)
                    rule = self._key_rule(name, url_context)
                    if rule is not None and rule[1] != "keep":
                        replaced = self._apply(rule[1], rule[0], child, state)
                        if replaced is not _DROP:
                            out[name] = replaced
                        continue
                    if rule is not None:
                        out[name] = child
                        continue
                    out[name] = self._value(child, state, depth + 1, url_context)
                return out
            finally:
                state.seen.discard(marker)
        if kind is list or isinstance(value, (list, tuple, set, frozenset)):
            marker = id(value)
            if marker in state.seen:
                state.count += 1
                return "[REDACTED:cycle]"
            state.seen.add(marker)
            try:
                return [self._value(item, state, depth + 1, url_context) for item in list(value)]
            finally:
                state.seen.discard(marker)
        if isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            text = raw.decode("utf-8", "replace")
            cleaned = self._text(text, state, depth, url_context)
            return raw if cleaned == text else cleaned
        try:
            text = str(value)
        except Exception:  # noqa: BLE001 - a hostile __str__
            state.count += 1
            return "[REDACTED:unprintable]"
        return self._text(text, state, depth, url_context)

    def _text(self, text: str, state: _Pass, depth: int, url_context: bool) -> str:
        if len(text) < MIN_SCAN_LENGTH:
            return text
        suffix = ""
        if len(text) > MAX_SCAN_LENGTH:
            text = text[:MAX_SCAN_LENGTH]
            suffix = "[TRUNCATED]"
            state.count += 1
        first = text[0] if text[0] not in " \t\r\n" else text.lstrip()[:1]
        if first in ("{", "[") and depth < MAX_DEPTH:
            parsed = _json_or_none(text)
            if parsed is not None:
                before = state.count
                cleaned = self._value(parsed, state, depth + 1, url_context)
                if state.count == before:
                    return text + suffix
                return json.dumps(cleaned, ensure_ascii=False, default=str) + suffix
        if "=" in text and " " not in text and _FORM.fullmatch(text):
            return self._form(text, state, depth, url_context) + suffix
        return self._scan(text, state) + suffix

    def _form(self, text: str, state: _Pass, depth: int, url_context: bool) -> str:
        """``a=1&password=x``: key rules on names (URL parameter names too), values scanned."""
        from urllib.parse import unquote_plus

        parts = []
        for pair in text.split("&"):
            raw_name, _, raw_value = pair.partition("=")
            name = unquote_plus(raw_name)
            if "?" in name:  # a whole URL: the first parameter's name follows the "?"
                scanned = self._scan(raw_name, state) if len(raw_name) >= MIN_SCAN_LENGTH else raw_name
                if scanned != raw_name:
                    pair, raw_name = f"{scanned}={raw_value}", scanned
                name = name.rsplit("?", 1)[1]
            rule = self._key_rule(name, url_context=True)
            if rule is not None and rule[1] != "keep":
                replaced = self._apply(rule[1], rule[0], unquote_plus(raw_value), state)
                if replaced is _DROP:
                    continue
                parts.append(f"{raw_name}={replaced}")
                continue
            if rule is None and len(raw_value) >= MIN_SCAN_LENGTH:
                # Decoded first (an encoded PEM or card hides from a raw scan); then raw, for
                # values that were never encoded (``email=john+tag@example.com``).
                value = unquote_plus(raw_value)
                cleaned = self._text(value, state, depth + 1, url_context)
                if cleaned == value and value != raw_value:
                    value = raw_value
                    cleaned = self._text(raw_value, state, depth + 1, url_context)
                if cleaned != value:
                    parts.append(f"{raw_name}={cleaned}")
                    continue
            parts.append(pair)
        return "&".join(parts)

    # ------------------------------------------------------------------ detectors

    def _card_detector(self) -> Detector:
        for detector in self._detectors:
            if detector.name == "credit_card":
                return detector
        from otel_audit.redaction.detectors import BUILTIN_DETECTORS

        return next(d for d in BUILTIN_DETECTORS if d.name == "credit_card")

    def _detector_replacement(self, detector: Detector, found: str, state: _Pass) -> str:
        action = self._actions.get(detector.name, detector.default_action)
        if action == "off":
            return found
        if action == "mask":  # what _apply does for a string, without its checks for other values
            state.count += 1
            return f"[REDACTED:{detector.name}]"
        if action == "hmac":
            state.count += 1
            return self._pseudonym(detector.name, found, state)
        if action == "drop":
            state.drop_attribute = True
            state.count += 1
            return f"[REDACTED:{detector.name}]"
        replaced = self._apply(action, detector.name, found, state)
        return replaced if isinstance(replaced, str) else f"[REDACTED:{detector.name}]"

    def _strictness(self, detector: Detector) -> int:
        return _ACTION_STRICTNESS.get(self._actions.get(detector.name, detector.default_action), 0)

    def _scan(self, text: str, state: _Pass) -> str:
        clean = self._clean_texts
        if text in clean:
            return text
        result = self._scan_uncached(text, state, self._plan)
        if result is text and len(text) <= 512:
            if len(clean) > 8192:
                clean.clear()
            clean.add(text)
        return result

    def _scan_uncached(self, text: str, state: _Pass, plan: _Plan) -> str:
        # Non-ASCII text is Python's to scan (a lone surrogate, from surrogateescape, would not
        # even cross into the native loop).
        if plan.native is not None and text.isascii():
            found = plan.native.scan(text)
            if found is not None:  # else: a text only Python's ``re`` reads exactly (separators)
                if type(found) is not list:  # too many rejected candidates: the whole string is unsafe
                    state.count += 1
                    return f"[REDACTED:{found.name}]"
                return self._replace_spans(text, found, state, ordered=True) if found else text
            if _NATIVE_UNREAD.search(text) is None:
                # The native loop takes this text but stopped: PCRE2 hit its match limit (or the
                # loop panicked). The text is not scanned again without that bound: it is unsafe.
                return _scan_limit_hit(state)
        ascii_text = text.isascii()
        lowered: str | None = None
        text_shape = text.encode("ascii").translate(SHAPE_TABLE) if ascii_text else None
        spans: list[tuple[int, int, Detector]] | None = None
        # Only entries whose shortest match fits in the text and whose needed characters occur.
        for entry in plan.select(_features(text, text_shape), len(text)):
            if entry[9]:  # no checks, no anchors: the regex's own literal prefix is the check
                compiled = entry[0]
                # A policy's regex (RE2) searches through a searcher that encodes the text once.
                search = compiled.search if type(compiled) is re.Pattern else compiled.searcher(text)
                first = search(text)
                if first is None:
                    continue
                found = _find(compiled, entry[1], text, first, search)
                if found is None:
                    state.count += 1
                    return f"[REDACTED:{entry[1][0].name}]"
                if found:
                    if spans is None:
                        spans = found
                    else:
                        spans.extend(found)
                continue
            compiled, detectors, _, literals, lower_literals, gate, shape_gate, keyed, anchored, _ = entry
            if literals is not None:  # one of these literals must occur (or, lower-cased, one of those)
                for literal in literals:
                    if literal in text:
                        break
                else:
                    if not lower_literals:
                        continue
                    if lowered is None:
                        lowered = text.lower()
                    for literal in lower_literals:
                        if literal in lowered:
                            break
                    else:
                        continue
            if gate is not None and not gate(text):
                continue
            if text_shape is not None and shape_gate is not None and not shape_gate(text_shape):
                continue
            if anchored is None:
                search = compiled.search if type(compiled) is re.Pattern else compiled.searcher(text)
            else:
                if type(anchored) is _Group:
                    if text_shape is not None and anchored.anchored:  # tried only where a match can start
                        starts = anchored.starts(text_shape)
                        if not starts:
                            continue
                        found = _find_at(compiled, detectors, text, starts)
                        if found is None:
                            state.count += 1
                            return f"[REDACTED:{detectors[0].name}]"
                        if found:
                            if spans is None:
                                spans = found
                            else:
                                spans.extend(found)
                        continue
                    anchors, anchor_in = (), "search"
                else:
                    anchors, anchor_in = anchored
                if anchor_in == "text":
                    search = _Anchored(compiled, anchors, text)
                elif not ascii_text or anchor_in == "search":
                    search = compiled.search
                elif anchor_in == "lower":
                    if lowered is None:
                        lowered = text.lower()
                    search = _Anchored(compiled, anchors, lowered)
                else:
                    search = _Anchored(compiled, anchors, text_shape)
            first = search(text)
            if first is None:
                continue
            if keyed is not None:
                found = _find_keyed(compiled, keyed, text)
            else:
                found = _find(compiled, detectors, text, first, search)
            if found is None:  # too many rejected candidates: treat the whole string as unsafe
                state.count += 1
                return f"[REDACTED:{detectors[0].name}]"
            if found:
                if spans is None:
                    spans = found
                else:
                    spans.extend(found)
        if not spans:
            return text
        return self._replace_spans(text, spans, state)

    def _replace_spans(self, text: str, spans: list[tuple[int, int, Detector]], state: _Pass, ordered: bool = False) -> str:
        """``text`` with each found span replaced as its detector's action says; overlapping
        spans become one region, so nothing partially leaks. ``ordered``: the spans are already
        sorted as :func:`_span_order` sorts them (the native scanner sorts its own)."""
        if "[REDACTED:" in text or "[HMAC:" in text:
            spans = _outside_markers(text, spans)
            if not spans:
                return text
        card = self._card
        if card is not None and any(span[2] is card for span in spans):
            spans = [span for span in spans if span[2] is not card or not _inside_hex_id(text, span[0], span[1])]
            if not spans:
                return text
        if len(spans) > 1 and not ordered:
            spans.sort(key=_span_order)
        merged: list[list[Any]] = []
        for start, end, detector in spans:
            if merged and start < merged[-1][1]:  # overlap: one region, nothing partially leaks
                region = merged[-1]
                region[1] = max(region[1], end)
                if self._strictness(detector) > self._strictness(region[2]):
                    region[2] = detector  # the strictest action found for any part of it
                continue
            merged.append([start, end, detector])
        pieces = []
        position = 0
        for start, end, detector in merged:
            pieces.append(text[position:start])
            pieces.append(self._detector_replacement(detector, text[start:end], state))
            position = end
        pieces.append(text[position:])
        return "".join(pieces)


#: Texts redacted whole because a scan hit its bound (PCRE2's match limit), since start.
SCAN_LIMIT_HITS = [0]
_SCAN_LIMIT_MARKER = "[REDACTED:scan_limit]"
#: What the native loop leaves to Python in an ASCII text (U+001C..U+001F: Python's ``\s``
#: matches them, PCRE2's does not). An ASCII text without them that it answers None for: a limit.
_NATIVE_UNREAD = re.compile("[\x1c-\x1f]")


def _scan_limit_hit(state: _Pass) -> str:
    """A text whose scan hit the engine's bound: redacted whole, counted (never passed through)."""
    SCAN_LIMIT_HITS[0] += 1
    state.count += 1
    if SCAN_LIMIT_HITS[0] == 1:
        print(
            "otel-audit: redaction: a text hit the scan's match limit and was redacted whole "
            "([REDACTED:scan_limit]); further ones are counted, not printed",
            file=sys.stderr,
        )
    return _SCAN_LIMIT_MARKER


def _native_enabled() -> bool:
    return _NativeScanner is not None and os.environ.get(NATIVE_ENV, "").strip().lower() not in ("false", "0", "no", "off")


#: Python ``re`` flags written as inline flags for PCRE2 (others: the plan stays in Python).
_INLINE_FLAGS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"))


def _native_scanner(entries: list[_PlanEntry], requires: list[tuple[tuple[int, ...], ...]]) -> Any:
    """The plan as the native scanner reads it, or None where only Python can scan it exactly.

    Custom detectors stay in Python: a policy's regex may use syntax PCRE2 reads differently.
    The built-in patterns are written in the syntax both read alike (tests compare the two on
    the corpus and on generated text). Shape gates and anchors are not passed: they only skip
    work (every match meets them), while literals and gates can decide and are kept."""
    if _NativeScanner is None:
        return None
    specs = []
    for entry, entry_requires in zip(entries, requires):
        compiled, detectors = entry[0], entry[1]
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
            f"(?{inline}){compiled.pattern}" if inline else compiled.pattern, entry[2],
            [list(member) for member in entry_requires], list(entry[3]) if entry[3] is not None else None,
            list(entry[4]), entry[5], members,
        ))  # fmt: skip
    try:
        return _NativeScanner(specs, is_secret_name, NEED_CHARS, MAX_REJECTIONS)
    except ValueError:  # a pattern PCRE2 does not take: scan in Python
        return None


def _outside_markers(text: str, spans: list[tuple[int, int, Detector]]) -> list[tuple[int, int, Detector]]:
    """The spans not inside one of the redactor's own markers: what an earlier pass wrote is not
    redacted again (``password=[REDACTED:secret_assignment]`` would otherwise become
    ``password=[REDACTED:secret_assignment]]``, a 13-digit run in an HMAC pseudonym a card)."""
    regions = [marker.span() for marker in REDACTION_MARKER.finditer(text)]
    if not regions:
        return spans
    return [span for span in spans if not any(start <= span[0] and span[1] <= end for start, end in regions)]


_HEX_ID_CHARS = frozenset("0123456789abcdefABCDEF-")
_HEX_LETTERS = frozenset("abcdefABCDEF")


def _inside_hex_id(text: str, start: int, end: int) -> bool:
    """A card-like digit run glued to a hex letter inside a UUID, a hash or a trace id
    (``1172ebe1-bf36-3422-8970-99779507a423``, ``34a2765c62ab57533654198052b7e380``): a token
    of 20+ hex digits and dashes with a hex letter in it. A card glued to other letters
    (``x4111…``, ``ÿ4111…``), or to a short hex token, is still a card."""
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if before not in _HEX_LETTERS and after not in _HEX_LETTERS:
        return False  # not glued to a hex letter: the validator's word stands
    left, right = start, end
    while left > 0 and text[left - 1] in _HEX_ID_CHARS:
        left -= 1
    while right < len(text) and text[right] in _HEX_ID_CHARS:
        right += 1
    return right - left >= 20


def _span_order(span: tuple[int, int, Detector]) -> tuple[int, int]:
    return span[0], -span[1]


class _Anchored:
    """``compiled.search`` for a regex whose every match starts where one of ``anchors`` occurs
    (``(literal, offset)``: the literal ``offset`` characters after the start) in ``haystack``
    (the text, its lower-cased form or its shape, position for position): the regex is tried at
    those places only, in order, which finds exactly what a search would. Each literal's next
    occurrence is remembered, so a text is read once per literal however many candidates it has
    (positions only move forward within one scan)."""

    __slots__ = ("match", "anchors", "haystack", "starts")

    def __init__(self, compiled: re.Pattern[str], anchors: tuple[tuple[Any, int], ...], haystack: Any) -> None:
        self.match = compiled.match
        self.anchors = anchors
        self.haystack = haystack
        # Per anchor: the first start at or after the last position asked for (-1: none left;
        # -2: not looked for yet).
        self.starts = [-2] * len(anchors)

    def __call__(self, text: str, position: int = 0) -> re.Match[str] | None:
        find = self.haystack.find
        match_at = self.match
        anchors = self.anchors
        starts = self.starts
        while True:
            best = -1
            for index, (literal, offset) in enumerate(anchors):
                start = starts[index]
                if start == -1:
                    continue
                if start < position:  # -2 (not looked for yet) or behind us: look again
                    found = find(literal, position + offset)
                    start = starts[index] = found - offset if found >= 0 else -1
                    if start == -1:
                        continue
                if best < 0 or start < best:
                    best = start
            if best < 0:
                return None
            candidate = match_at(text, best)
            if candidate is not None:
                return candidate
            position = best + 1


class _Plan:
    """Scan-plan entries, in detector order, and the sub-lists a text actually needs, cached by
    the text's *features* and length: an entry is left out when its shortest match is longer
    than the text, or when no member's :attr:`~Detector.needs` (characters every match
    contains: ``=``, ``:``, ``@``, ``_``, ``-``, ``.``, ``/``, a digit) all occur in the text.
    A clean sentence without ``=``/``:``/``@`` or a JSON leaf of digits skips most entries
    without visiting them. ``dispatch=False``: every entry that fits the length (the plain way,
    for tests)."""

    __slots__ = ("entries", "_longest", "_selected", "_requires", "_dispatch", "native")

    def __init__(self, entries: list[_PlanEntry], dispatch: bool = True, native: bool = False) -> None:
        self.entries = entries
        self._longest = max((entry[2] for entry in entries), default=0)
        self._selected: dict[int, list[_PlanEntry]] = {}
        self._dispatch = dispatch
        # Per entry, per member: the feature bits of which each must meet the text's (an
        # entry runs when one member's requirements all hold; no requirement: always).
        self._requires = [tuple(_feature_requirements(d) for d in entry[1]) for entry in entries]
        #: The native scanner for this plan (``native=True``, the extension built, and every
        #: detector a built-in one), else None: the plan is then scanned in Python.
        self.native = _native_scanner(entries, self._requires) if native else None

    def __iter__(self) -> Any:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def select(self, features: int, length: int) -> list[_PlanEntry]:
        """The entries a text with these feature bits (see :func:`_features`) and this length
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
                if entry[2] <= length
                and any(all(bits & features for bits in member) for member in members)
            ]  # fmt: skip
            if len(self._selected) > 8192:
                self._selected.clear()
            self._selected[key] = selected
        return selected


#: Feature bits of a text (:func:`_features`): one per character of NEED_CHARS, then "a digit",
#: then "an ASCII capital letter".
_DIGIT_FEATURE = 1 << len(NEED_CHARS)
_CAPITAL_FEATURE = 2 << len(NEED_CHARS)
_FEATURE_BITS = len(NEED_CHARS) + 2
_ALL_FEATURES = (1 << _FEATURE_BITS) - 1
assert NEED_CHARS == "=:@_-./", "_features tests these characters in this order"


def _features(text: str, text_shape: bytes | None) -> int:
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


class _Group:
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


_PlanEntry = tuple[
    re.Pattern[str], tuple[Detector, ...], int, "tuple[str, ...] | None", tuple[str, ...], Any, Any, "Detector | None", Any, bool
]


def _scan_plan(detectors: tuple[Detector, ...]) -> list[_PlanEntry]:
    """One entry per detector, except detectors sharing a ``lead`` (``\\d``), which are found in
    a single pass (:class:`_Group`). Each entry carries the shortest text it can match, so short
    values skip it, the cheap checks that must pass before its regex runs (literals, exact or
    lower-cased; a gate on the text; a gate on the text's shape) and where its matches start
    (anchors), so the regex is tried there only."""
    items: list[Detector | _Group] = []
    by_lead: dict[str, list[Detector]] = {}
    for detector in detectors:
        if detector.lead:
            by_lead.setdefault(detector.lead, []).append(detector)
        else:
            items.append(detector)
    for lead, members in by_lead.items():
        items.append(members[0] if len(members) == 1 else _Group(lead, tuple(members)))
    entries: list[_PlanEntry] = []
    for item in items:
        literals: tuple[str, ...] | None = None
        lower_literals: tuple[str, ...] = ()
        gate = shape_gate = keyed = anchored = None
        if isinstance(item, _Group):
            compiled, group = item.compiled, item.members
            anchored = item  # where its regex is tried: _Group.starts
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
        entries.append(
            (compiled, group, _min_width(compiled), literals, lower_literals, gate, shape_gate, keyed, anchored,
             literals is None and gate is None and shape_gate is None and keyed is None and anchored is None)
        )  # fmt: skip
    return entries


def _find(
    compiled: re.Pattern[str],
    detectors: tuple[Detector, ...],
    text: str,
    match: re.Match[str] | None = None,
    search: Any = None,
) -> list[tuple[int, int, Detector]] | None:
    """Validated spans in ``text``; a rejected candidate is retried one character on, so
    ``12 4111111111111111`` still finds the card. ``match``: the first candidate, when the
    caller already searched for it."""
    single = detectors[0] if len(detectors) == 1 else None
    has_value = single is not None and "value" in compiled.groupindex
    found: list[tuple[int, int, Detector]] = []
    position = 0
    rejections = 0
    length = len(text)
    if search is None:
        search = compiled.search
    while position <= length:
        if match is None:
            match = search(text, position)
            if match is None:
                break
        candidate, match = match, None
        detector = single if single is not None else detectors[int(candidate.lastgroup[2:])]
        if has_value and candidate.group("value") is not None:
            start, end = candidate.span("value")
        else:
            start, end = candidate.span()
        if detector.keyed and not _secret_name_before(text, candidate.start()):
            position = candidate.start() + 1
            continue
        if detector.extend_left:
            # Up to 64 allowed characters just before the match, read backwards in one regex.
            floor = start - 64 if start > 64 else 0
            left = start
            if start:
                left -= _extend_left(detector.extend_left).match(
                    text[start - 1 : floor - 1 : -1] if floor else text[start - 1 :: -1]
                ).end()
            if left == start:
                position = candidate.start() + 1
                continue
            start = left
        if end == start:
            position = candidate.end() + 1
            continue
        accept = detector.accept
        if accept is None:
            found.append((start, end, detector))
            position = candidate.end()
            continue
        taken = accept(text[start:end])
        if taken:
            found.append((start, start + taken, detector))
            position = max(start + taken, candidate.start() + 1)
        else:
            rejections += 1
            if rejections > MAX_REJECTIONS:
                return None
            position = candidate.start() + 1
    return found


def _find_at(
    compiled: re.Pattern[str], detectors: tuple[Detector, ...], text: str, starts: list[int]
) -> list[tuple[int, int, Detector]] | None:
    """:func:`_find` for a :class:`_Group` whose every match starts at one of ``starts``
    (sorted): the regex is matched there only, in order (its members have no value group, no
    key rule and extend nothing to the left)."""
    found: list[tuple[int, int, Detector]] = []
    position = 0
    rejections = 0
    match_at = compiled.match
    for start in starts:
        if start < position:
            continue
        candidate = match_at(text, start)
        if candidate is None:
            continue
        detector = detectors[int(candidate.lastgroup[2:])]  # type: ignore[index]
        end = candidate.end()
        if end == start:
            position = end + 1
            continue
        accept = detector.accept
        if accept is None:
            found.append((start, end, detector))
            position = end
            continue
        taken = accept(text[start:end])
        if taken:
            found.append((start, start + taken, detector))
            position = start + taken
        else:
            rejections += 1
            if rejections > MAX_REJECTIONS:
                return None
            position = start + 1
    return found


#: Read backwards from the operator: the longest run of name characters (at most 41) that ends
#: in a letter, i.e. the name's first letter when read forwards.
_NAME_REVERSED = re.compile(r"[A-Za-z0-9_.-]{0,40}[A-Za-z]")


@lru_cache(maxsize=64)
def _extend_left(allowed: str) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(c) for c in allowed) + "]*")


def _secret_name_before(text: str, operator: int) -> bool:
    """Is the word before ``=``/``:`` a secret name (``password``, ``db_password``, ``sessionid``)?

    The name is the longest ``[A-Za-z][A-Za-z0-9_.-]{0,40}`` that ends, after an optional quote
    and at most 5 spaces or tabs, right at the operator, within the 48 characters before it.
    Worked out from the operator backwards (a left-to-right regex retried at every letter of the
    window was the redactor's biggest cost)."""
    floor = operator - 48 if operator > 48 else 0
    end = operator
    while end > floor and text[end - 1] in " \t":
        end -= 1
        if operator - end > 5:
            return False
    if end > floor and text[end - 1] in "\"'":
        end -= 1
    if end <= floor:
        return False
    name = _NAME_REVERSED.match(text[end - 1 : floor - 1 : -1] if floor else text[end - 1 :: -1])
    if name is None:
        return False
    return builtin_key_rule(text[end - name.end() : end]) is not None


#: The text read backwards: an operator, at most 5 spaces or tabs, an optional quote, then the
#: name (see :func:`_secret_name_before`). Tried at operators only, every name read once.
_OPERATOR_NAME_REVERSED = re.compile(r"[:=][ \t]{0,5}[\"']?([A-Za-z0-9_.-]{0,40}[A-Za-z])")


def _find_keyed(compiled: re.Pattern[str], detector: Detector, text: str) -> list[tuple[int, int, Detector]]:
    """:func:`_find` for ``secret_assignment`` (keyed, no validator, matches start at ``:``/``=``):
    the operators whose name is a secret name are found in one backwards pass over the text,
    then the value is matched at each of them, left to right, as a search would."""
    backwards = text[::-1]
    last = len(text) - 1
    operators = []
    for named in _OPERATOR_NAME_REVERSED.finditer(backwards):
        if builtin_key_rule(named.group(1)[::-1]) is not None:
            operators.append(last - named.start())
    found: list[tuple[int, int, Detector]] = []
    if not operators:
        return found
    operators.reverse()
    match_at = compiled.match
    has_value = "value" in compiled.groupindex
    position = 0
    for operator in operators:
        if operator < position:
            continue
        match = match_at(text, operator)
        if match is None:
            continue
        if has_value and match.group("value") is not None:
            start, end = match.span("value")
        else:
            start, end = match.span()
        if end == start:
            position = match.end() + 1
            continue
        found.append((start, end, detector))
        position = match.end()
    return found


_NAMED_VALUE_KEYS = ("value", "Value")


def _named_secret(mapping: Mapping[Any, Any], redactor: Redactor) -> tuple[str, str] | None:
    """``{"name": "AWS_SECRET_ACCESS_KEY", "value": ...}`` (k8s env, HAR headers, AWS tags): the
    sibling name decides, as if it were the key."""
    for name_key in ("name", "Name", "key", "Key"):
        name = mapping.get(name_key)
        if isinstance(name, str) and 0 < len(name) <= 128 and any(k in mapping for k in _NAMED_VALUE_KEYS):
            rule = redactor._key_rule(name, url_context=False)
            return rule if rule is not None and rule[1] != "keep" else None
    return None


def _json_or_none(text: str) -> Any:
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, (dict, list)) else None


def _canonical(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _partial(label: str, text: str) -> str:
    """Enough to tell items apart when investigating, never enough to use them."""
    shown = None
    if label == "credit_card":
        digits = "".join(c for c in text if c.isdigit())
        shown = "****" + digits[-4:]
    elif label == "iban":
        compact = text.replace(" ", "")
        shown = compact[:2] + "****" + compact[-4:]
    elif label == "email" and "@" in text:
        local, _, domain = text.rpartition("@")
        shown = local[:1] + "***@" + domain
    elif label == "phone":
        digits = "".join(c for c in text if c.isdigit())
        shown = "****" + digits[-2:]
    elif label == "ipv4":
        shown = ".".join(text.split(".")[:2]) + ".*.*"
    elif len(text) >= 20:
        shown = "****" + text[-4:]
    return f"[REDACTED:{label}:{shown}]" if shown else f"[REDACTED:{label}]"


def pseudonymise(value: str, environ: Mapping[str, str] | None = None) -> str:
    """The ``hmac`` action's pseudonym for one value, outside a redaction pass.

    Same key (``OTEL_AUDIT_HMAC_KEY`` or this process's random key) and format as the redactor's,
    so an attempted username pseudonymised by the policy joins with the same name elsewhere.
    """
    env = os.environ if environ is None else environ
    raw = env.get(KEY_ENV)
    key = raw.encode() if raw and len(raw) >= 16 else _HmacKey.ephemeral()[0]
    return "[HMAC:" + hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:20] + "]"
