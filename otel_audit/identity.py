"""Accounts and privileges from any layer: a row change in the app's user table is an account
action, whichever adapter saw it (Django's auth user, a SQLAlchemy ``User``, a raw ``UPDATE users``).

The rules are data (``DEFAULT_USER_TABLES`` ... in :mod:`otel_audit.policy.model`), overridable in the policy's ``actors``
section (docs/policy.md#actors). A change to a user row is named, most telling first:

* a privilege field (``is_superuser``, ``role``, ``groups`` ...) -> ``authorization.grant_role`` /
  ``revoke_role``, with the privilege and its direction where the values say it (booleans, role
  names; a raw SQL parameter does not: ``audit.role.direction=unknown``);
* a credential field (``password``, ``hashed_password`` ...) -> ``account_management.password_change``
  (its values are never kept);
* a status field (``is_active``, ``disabled``, ``locked`` ...) -> ``enable_user`` / ``disable_user``;
* else inserts are ``create_user``, deletes ``delete_user``, updates ``update_user``.
"""

from __future__ import annotations

from typing import Any

from otel_audit.event import Change
from otel_audit.policy.globs import compile_globs
from otel_audit.policy.model import DEFAULT_CREDENTIAL_FIELDS, DEFAULT_PRIVILEGE_FIELDS, DEFAULT_USER_TABLES

#: Status fields -> True when a true value means the account is enabled.
STATUS_FIELDS = {"is_active": True, "active": True, "enabled": True, "is_enabled": True,
                 "disabled": False, "is_disabled": False, "locked": False, "is_locked": False, "blocked": False}
#: Boolean privilege fields -> the role their true value grants.
FLAG_ROLES = {"is_superuser": "superuser", "superuser": "superuser", "is_staff": "staff", "is_admin": "admin",
              "admin": "admin"}

_ACCOUNT_ACTIONS = {"create_resource": "create_user", "delete_resource": "delete_user", "update_resource": "update_user"}


class IdentityRules:
    """The compiled rules of one policy (``actors.user_tables`` / ``privilege_fields`` /
    ``credential_fields``); :meth:`refine` renames a change to a user row in place."""

    def __init__(self, user_tables: tuple[str, ...] = DEFAULT_USER_TABLES,
                 privilege_fields: tuple[str, ...] = DEFAULT_PRIVILEGE_FIELDS,
                 credential_fields: tuple[str, ...] = DEFAULT_CREDENTIAL_FIELDS) -> None:
        self.user_tables = compile_globs(user_tables, ignore_case=True)
        self.privilege_fields = frozenset(name.lower() for name in privilege_fields)
        self.credential_fields = frozenset(name.lower() for name in credential_fields)
        self._is_user: dict[str | None, bool] = {}

    @classmethod
    def from_policy(cls, policy: Any) -> "IdentityRules":
        actors = getattr(getattr(policy, "model", None), "actors", None)
        if actors is None:
            return cls()
        return cls(actors.user_tables, actors.privilege_fields, actors.credential_fields)

    def is_user_table(self, name: str | None) -> bool:
        known = self._is_user.get(name)
        if known is None:
            known = bool(name) and self.user_tables is not None and self.user_tables.match(name) is not None
            if len(self._is_user) < 1024:
                self._is_user[name] = known
        return known

    def refine(self, change: Change) -> bool:
        """Name a data change to a user row as the account or privilege action it is; True if renamed."""
        if change.category != "data_modification" or change.action not in _ACCOUNT_ACTIONS:
            return False
        if not (change.account or self.is_user_table(change.table) or self.is_user_table(change.type)):
            return False
        fields = [name.lower() for name in change.fields or ()]
        if change.action == "update_resource":
            privileges = [name for name in fields if name in self.privilege_fields]
            if privileges:
                self._privilege(change, privileges)
                return True
            if any(name in self.credential_fields for name in fields):
                change.category, change.action = "account_management", "password_change"
                self._forget_values(change)
                return True
            status = next((name for name in fields if name in STATUS_FIELDS), None)
            if status is not None:
                enabled = _new_value(change, status)
                if isinstance(enabled, (bool, int)):
                    on = bool(enabled) == STATUS_FIELDS[status]
                    change.category, change.action = "account_management", "enable_user" if on else "disable_user"
                    return True
        change.category, change.action = "account_management", _ACCOUNT_ACTIONS[change.action]
        self._forget_values(change)
        return True

    def _privilege(self, change: Change, fields: list[str]) -> None:
        granted: list[str] = []
        revoked: list[str] = []
        unknown = False
        for name in fields:
            new, old = _new_value(change, name), _old_value(change, name)
            if name in FLAG_ROLES:
                if isinstance(new, (bool, int)):
                    (granted if new else revoked).append(FLAG_ROLES[name])
                else:
                    unknown = True
                    granted.append(FLAG_ROLES[name])
            elif new is _MISSING:
                unknown = True  # a bound parameter: which role is not known, only that it changed
            else:
                added, removed = _role_names(new), _role_names(old)
                granted.extend(role for role in added if role not in removed)
                revoked.extend(role for role in removed if role not in added)
        change.category = "authorization"
        change.action = "revoke_role" if revoked and not granted else "grant_role"
        attributes = dict(change.attributes or {})
        names = sorted(set(granted if change.action == "grant_role" else revoked))
        if names:
            attributes["audit.role.names"] = names
        if granted and revoked:
            attributes["audit.role.revoked"] = sorted(set(revoked))
        attributes["audit.role.fields"] = fields
        if unknown:
            attributes["audit.role.direction"] = "unknown"
        change.attributes = attributes
        self._forget_values(change)

    def _forget_values(self, change: Change) -> None:
        """Credential values never stay on a change (not even hashed, not even at ``full``)."""
        if change.values:
            change.values = {name: ({} if name.lower() in self.credential_fields else value)
                             for name, value in change.values.items()}


_MISSING = object()


def _new_value(change: Change, field: str) -> Any:
    value = _values(change, field)
    return value.get("new", _MISSING) if isinstance(value, dict) else _MISSING


def _old_value(change: Change, field: str) -> Any:
    value = _values(change, field)
    return value.get("old", _MISSING) if isinstance(value, dict) else _MISSING


def _values(change: Change, field: str) -> Any:
    for name, value in (change.values or {}).items():
        if name.lower() == field:
            return value
    return None


def _role_names(value: Any) -> list[str]:
    if value is _MISSING or value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [str(item) for item in value]
    return [str(value)]
