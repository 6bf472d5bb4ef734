"""The policy's ``redaction:`` section: schema check (:func:`validate_config`) and parsed settings.

Every error names the path inside the section (``redaction.custom_detectors[0].pattern``) and what
was expected, so a policy author can fix the file without reading this code.

    redaction:
      detectors:          {phone: hmac, ipv4: off, credit_card: partial}   # built-in name -> action
      custom_detectors:   [{name: employee_id, pattern: 'EMP-\\d{6}', validator: luhn, action: mask}]
      keys:               [{match: ["x-internal-*", "*_pin"], action: mask}]  # extra key rules
      attributes:         {enduser.id: hmac, user.name: hmac, client.address: keep}
      sql:                {raw_text: false}
      allow:              [{categories: [http], levels: [request, full], attributes: ["http.*", "url.path"]}]
      hmac:               {missing_key: ephemeral}   # or mask
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from otel_audit.attributes import LEVELS
from otel_audit.errors import OtelAuditError
from otel_audit.redaction.detectors import BUILTIN_DETECTORS, DETECTOR_NAMES, Detector, custom_detector
from otel_audit.redaction.keys import DEFAULT_ATTRIBUTE_ACTIONS, GlobSet, normalise
from otel_audit.redaction.linear import compile_error, superlinear_construct
from otel_audit.redaction.validators import VALIDATORS

ACTIONS = ("mask", "partial", "hmac", "drop")
DETECTOR_ACTIONS = ACTIONS + ("off",)
ATTRIBUTE_ACTIONS = ACTIONS + ("keep",)
SECTION_KEYS = ("detectors", "custom_detectors", "keys", "attributes", "sql", "allow", "hmac")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


class RedactionConfigError(OtelAuditError):
    """The policy's ``redaction:`` section is invalid; the message names the path and the expectation.

    ``path`` is the location inside the section as a tuple (``("custom_detectors", 0, "pattern")``)
    and ``message`` the expectation alone, for the policy loader to compose its own report.
    """

    def __init__(self, path: tuple[Any, ...], message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{render_path(('redaction',) + path)}: {message}")


def render_path(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][\w.*-]*", str(part)):
            out += ("." if out else "") + str(part)
        else:
            out += f"[{str(part)!r}]"
    return out


def _fail(path: tuple[Any, ...], expected: str, got: Any = None, show: bool = True) -> RedactionConfigError:
    shown = f"; got {got!r}" if show else ""
    if isinstance(got, str) and len(got) > 80:
        shown = f"; got {got[:77]!r}..."
    return RedactionConfigError(path, f"expected {expected}{shown}")


def _mapping(value: Any, path: tuple[Any, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, "a mapping", type(value).__name__)
    return value


def _list(value: Any, path: tuple[Any, ...]) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise _fail(path, "a list", type(value).__name__)
    return list(value)


def _strings(value: Any, path: tuple[Any, ...]) -> tuple[str, ...]:
    """A string or a list of non-empty strings."""
    items = [value] if isinstance(value, str) else _list(value, path)
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise _fail(path + (index,) if not isinstance(value, str) else path, "a non-empty string", item)
    return tuple(items)


def _choice(value: Any, path: tuple[Any, ...], choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _fail(path, "one of " + ", ".join(choices), value)
    return value


def validate_config(section: Any) -> None:
    """Raise :class:`RedactionConfigError` if ``section`` (the ``redaction:`` mapping) is invalid."""
    RedactionSettings.parse(section)


@dataclass(frozen=True)
class KeyRule:
    """A policy key rule: names (globs) that are secret, with the action to take."""

    patterns: tuple[str, ...]
    action: str
    _globs: GlobSet = field(init=False, repr=False)
    _normalised: GlobSet = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_globs", GlobSet(self.patterns))
        object.__setattr__(self, "_normalised", GlobSet(tuple(normalise(p) for p in self.patterns)))

    def matches(self, key: str) -> bool:
        last = key.rsplit(".", 1)[-1]
        return (
            self._globs.matches(key) or self._globs.matches(last) or self._normalised.matches(normalise(key))
        )


@dataclass(frozen=True)
class AllowRule:
    categories: frozenset[str] | None
    levels: frozenset[str] | None
    attributes: GlobSet

    def applies(self, category: str | None, level: str | None) -> bool:
        if self.categories is not None and category not in self.categories:
            return False
        return self.levels is None or level in self.levels


@dataclass(frozen=True)
class RedactionSettings:
    detectors: tuple[Detector, ...]  # active ones, in scan order
    detector_actions: Mapping[str, str]
    key_rules: tuple[KeyRule, ...]
    attribute_actions: Mapping[str, str]  # exact keys
    attribute_globs: tuple[tuple[GlobSet, str], ...]
    sql_raw_text: bool
    allow: tuple[AllowRule, ...]
    hmac_missing_key: str  # ephemeral | mask

    def allow_list(self, category: str | None, level: str | None) -> list[GlobSet] | None:
        """Globs of attributes that may leave for this category/level, or None (no allow-list applies)."""
        matched = [rule.attributes for rule in self.allow if rule.applies(category, level)]
        return matched or None

    def attribute_action(self, key: str) -> str | None:
        action = self.attribute_actions.get(key)
        if action is not None:
            return action
        for globs, glob_action in self.attribute_globs:
            if globs.matches(key):
                return glob_action
        return None

    @classmethod
    def parse(cls, section: Any) -> "RedactionSettings":
        section = {} if section is None else _mapping(section, ())
        for key in section:
            if key not in SECTION_KEYS:
                raise _fail((key,), "a known setting (" + ", ".join(SECTION_KEYS) + ")", key)

        actions = {d.name: d.default_action for d in BUILTIN_DETECTORS}
        for name, action in _mapping(section.get("detectors") or {}, ("detectors",)).items():
            if name not in DETECTOR_NAMES:
                raise _fail(("detectors", name), "a built-in detector (" + ", ".join(sorted(DETECTOR_NAMES)) + ")", name)
            actions[name] = _choice(action, ("detectors", name), DETECTOR_ACTIONS)

        detectors = [d for d in BUILTIN_DETECTORS if actions[d.name] != "off"]
        for index, raw in enumerate(_list(section.get("custom_detectors") or [], ("custom_detectors",))):
            path = ("custom_detectors", index)
            raw = _mapping(raw, path)
            for key in raw:
                if key not in ("name", "pattern", "validator", "action"):
                    raise _fail(path + (key,), "one of name, pattern, validator, action", key)
            name = raw.get("name")
            if not isinstance(name, str) or not _NAME.match(name):
                raise _fail(path + ("name",), "a lower-case identifier such as employee_id", name)
            if name in actions:
                raise _fail(path + ("name",), "a name not already used by a detector", name)
            pattern = raw.get("pattern")
            if not isinstance(pattern, str) or not pattern:
                raise _fail(path + ("pattern",), "a regular expression", pattern)
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise _fail(path + ("pattern",), f"a valid regular expression ({exc})", show=False) from None
            if compiled.match(""):
                raise _fail(path + ("pattern",), "a pattern that does not match the empty string", pattern)
            construct = superlinear_construct(pattern)
            if construct is None:
                problem = compile_error(pattern)
                construct = f"syntax the linear-time engine (RE2) does not take ({problem})" if problem else None
            if construct is not None:
                raise RedactionConfigError(
                    path + ("pattern",),
                    f"custom detector {name!r}: expected a pattern that matches in linear time; it has {construct}",
                )
            validator = raw.get("validator")
            if validator is not None:
                validator = _choice(validator, path + ("validator",), tuple(VALIDATORS))
            action = _choice(raw.get("action", "mask"), path + ("action",), ACTIONS)
            actions[name] = action
            detectors.append(custom_detector(name, pattern, validator, action))

        key_rules = []
        for index, raw in enumerate(_list(section.get("keys") or [], ("keys",))):
            path = ("keys", index)
            raw = _mapping(raw, path)
            for key in raw:
                if key not in ("match", "action"):
                    raise _fail(path + (key,), "one of match, action", key)
            if "match" not in raw:
                raise _fail(path + ("match",), "a key name or glob (or a list of them)", None)
            key_rules.append(
                KeyRule(_strings(raw["match"], path + ("match",)), _choice(raw.get("action", "mask"), path + ("action",), ATTRIBUTE_ACTIONS))
            )

        attribute_actions = dict(DEFAULT_ATTRIBUTE_ACTIONS)
        attribute_globs = []
        policy_attributes = _mapping(section.get("attributes") or {}, ("attributes",))
        for key, action in policy_attributes.items():
            if not isinstance(key, str) or not key:
                raise _fail(("attributes",), "attribute names as keys", key)
            action = _choice(action, ("attributes", key), ATTRIBUTE_ACTIONS)
            if any(c in key for c in "*?["):
                attribute_globs.append((GlobSet((key,)), action))
            else:
                attribute_actions[key] = action
        # The actor before the request is the same "who" as enduser.id: same treatment unless told.
        if "enduser.id" in policy_attributes and "audit.actor.before" not in policy_attributes:
            attribute_actions["audit.actor.before"] = attribute_actions["enduser.id"]

        sql = _mapping(section.get("sql") or {}, ("sql",))
        for key in sql:
            if key != "raw_text":
                raise _fail(("sql", key), "raw_text", key)
        raw_text = sql.get("raw_text", False)
        if not isinstance(raw_text, bool):
            raise _fail(("sql", "raw_text"), "true or false", raw_text)

        allow = []
        for index, raw in enumerate(_list(section.get("allow") or [], ("allow",))):
            path = ("allow", index)
            raw = _mapping(raw, path)
            for key in raw:
                if key not in ("categories", "levels", "attributes"):
                    raise _fail(path + (key,), "one of categories, levels, attributes", key)
            if "attributes" not in raw:
                raise _fail(path + ("attributes",), "the list of attribute names (globs) that may leave", None)
            categories = raw.get("categories")
            levels = raw.get("levels")
            level_set = None
            if levels is not None:
                level_set = frozenset(_strings(levels, path + ("levels",)))
                for level in level_set:
                    _choice(level, path + ("levels",), LEVELS[1:])
            allow.append(
                AllowRule(
                    frozenset(_strings(categories, path + ("categories",))) if categories is not None else None,
                    level_set,
                    GlobSet(_strings(raw["attributes"], path + ("attributes",))),
                )
            )

        hmac_section = _mapping(section.get("hmac") or {}, ("hmac",))
        for key in hmac_section:
            if key != "missing_key":
                raise _fail(("hmac", key), "missing_key", key)
        missing_key = _choice(hmac_section.get("missing_key", "ephemeral"), ("hmac", "missing_key"), ("ephemeral", "mask"))

        return cls(
            detectors=tuple(detectors),
            detector_actions=actions,
            key_rules=tuple(key_rules),
            attribute_actions=attribute_actions,
            attribute_globs=tuple(attribute_globs),
            sql_raw_text=raw_text,
            allow=tuple(allow),
            hmac_missing_key=missing_key,
        )
