"""The redactor and its walk over a record: key rules first, then structure (JSON, form bodies,
SQL), then value detectors.

Order matters for speed and accuracy: a key rule settles a value without scanning it
(``password`` is masked whatever it holds), short strings and plain numbers skip the scan, and
detectors run only where their prefilter literal occurs (the text scan:
:mod:`~otel_audit.redaction.text_scan`). What replaces a value is written by
:class:`~otel_audit.redaction.actions.Replacements`. The redactor never raises: unexpected
failures are contained and the record fails closed (every non-bookkeeping value masked).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from otel_audit.config import NATIVE_SCAN_ENV, hmac_key_setting
from otel_audit.errors import containment
from otel_audit.redaction.actions import DROP, Replacements
from otel_audit.redaction.detectors import Detector
from otel_audit.redaction.keys import PROTECTED, URL_PARAM_NAMES, builtin_key_rule, normalise
from otel_audit.redaction.pseudonyms import EphemeralKey, key_id_for
from otel_audit.redaction.scan_plan import NativeScanner, ScanPlan, native_enabled, plan_entries
from otel_audit.redaction.settings import RedactionSettings
from otel_audit.redaction.sql import sanitize_sql
from otel_audit.redaction.text_scan import scan_text
from otel_audit.redaction.validators import payment_card

#: Strings shorter than this cannot hold anything a detector finds (shortest: ``a@b.io``).
MIN_SCAN_LENGTH = 6
#: Longer strings are cut here (and marked) before scanning: what was not scanned never leaves.
MAX_SCAN_LENGTH = 256 * 1024
MAX_DEPTH = 32
MAX_NODES = 20_000

URL_ATTRIBUTES = frozenset({"url.query", "url.full", "http.url", "http.target", "url.original"})

_FORM = re.compile(r"[^=&\s]{1,256}=[^&\s]*(?:&[^=&\s]{1,256}=[^&\s]*){0,1000}")
_NOTHING = object()
_PROTECTED_PLAN = ("protected",)
_KEEP_PLAN = ("keep",)
_VALUE_PLAN = ("value",)
#: Keys whose values take the general path (SQL sanitising, URL context, bound parameters).
_SPECIAL_VALUE_KEYS = frozenset({"db.query.text", "db.query.parameters"} | URL_ATTRIBUTES)
#: A string starting with one of these may be JSON (parsed and walked, not only scanned).
_STRUCTURED_START = frozenset("{[ \t\r\n")


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


class Redactor(Replacements):
    """Policy-driven redaction of audit records (and, opt-in, of every application log record)."""

    def __init__(self, settings: RedactionSettings, key: bytes | None = None, key_id: str | None = None) -> None:
        self.settings = settings
        self._key = key
        self._key_id = key_id or (key_id_for(key) if key else None)
        self._detectors: tuple[Detector, ...] = settings.detectors
        self._actions = settings.detector_actions
        self._plan = ScanPlan(plan_entries(settings.detectors), native=native_enabled())
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
        raw_key, key_id = hmac_key_setting(environ)
        return cls(
            RedactionSettings.parse(section),
            key=raw_key.encode("utf-8") if raw_key else None,
            key_id=key_id,
        )

    @property
    def scan_mode(self) -> str:
        """How texts are scanned, said in a line (``otel-audit policy validate`` prints it)."""
        if self._plan.native is not None:
            return "native (non-ASCII text in Python)"
        if NativeScanner is None:
            return "Python (the native scan loop is not built: install with cargo present)"
        if not native_enabled():
            return f"Python ({NATIVE_SCAN_ENV}=false)"
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

    def untouched(self, attributes: Any, body: Any, *, category: str | None = None, level: str | None = None) -> bool:
        """True when :meth:`redact` would give this audit record back as it is, counting nothing: no
        allow-list applies and every attribute (and the body) is protected, kept, or a value found
        clean before or too short to scan. Most records are; the pipeline then keeps its draft."""
        settings = self.settings
        if type(attributes) is not dict or (settings.allow and settings.allow_list(category, level) is not None):
            return False
        work = self._record_plan(attributes)
        if work is None:
            return False
        nodes = 0
        for key, plan in work:
            # a plain value, or a URL (whose context only matters to forms and JSON: not unchanged texts)
            if plan is not _VALUE_PLAN and plan[-1] not in URL_ATTRIBUTES:
                return False
            nodes = self._unchanged_plain(attributes[key], nodes)
            if nodes < 0:
                return False
        return body is None or body is _NOTHING or (type(body) is str and self._unchanged_text(body))

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
            result.key_id = self._key_id or EphemeralKey.get()[1]
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
                nodes = self._unchanged_plain(value, state.nodes)
                if nodes >= 0:
                    state.nodes = nodes
                    if type(value) is list:
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
            if cleaned is DROP or state.drop_attribute:
                state.count += 1 if state.count == before else 0
                fields.append(key)
                del out[key]
                continue
            out[key] = cleaned
            if state.count != before:
                fields.append(key)
        return out, fields

    def _unchanged_plain(self, value: Any, nodes: int) -> int:
        """The node count after ``value`` when redaction gives it back without looking further (a
        text found clean or too short, an int too small for a card number, a short list of such
        texts under the node bound); -1 when it has to be looked at."""
        kind = type(value)
        if kind is str:
            return nodes + 1 if self._unchanged_text(value) else -1
        if kind is int:
            return nodes + 1 if -(10**12) < value < 10**12 else -1
        if kind is list and len(value) <= 64 and nodes < MAX_NODES:
            unchanged = self._unchanged_text
            for item in value:
                if type(item) is not str or not unchanged(item):
                    return -1
            return nodes + 1 + len(value)
        return -1

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
            if cleaned is DROP or state.drop_attribute:
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
                        if replaced is not DROP:
                            out[str(child_key)] = replaced
                        continue
                    name = child_key if isinstance(child_key, str) else str(child_key)
                    rule = self._key_rule(name, url_context)
                    if rule is not None and rule[1] != "keep":
                        replaced = self._apply(rule[1], rule[0], child, state)
                        if replaced is not DROP:
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
                if replaced is DROP:
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

    def _scan_uncached(self, text: str, state: _Pass, plan: ScanPlan) -> str:
        found = scan_text(text, plan)
        if type(found) is str:  # the whole text is unsafe: replaced whole
            state.count += 1
            return found
        return self._replace_spans(text, found, state) if found else text


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
