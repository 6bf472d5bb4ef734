"""Django model signals: row-level changes of the action (they take over the SQL statement's entry).

``post_init`` keeps a snapshot of loaded field values (no extra query), ``pre_save`` compares it to
find the changed field names, ``post_save`` / ``post_delete`` hand them to the action with the model
label and primary key (values only at ``full`` level, redacted). The user model gets
account-management actions (password change, enable/disable), and flips of ``is_superuser`` /
``is_staff`` are role grants/revocations, as are ``m2m_changed`` on the user's groups and
permissions. Bookkeeping rows (sessions, admin ``LogEntry``, migrations) are not changes of the
action. Outside a request, ``pre_save``/``pre_delete`` hold the transaction's record open until the
row's ``post_`` signal, so one autocommit save is one record."""

from __future__ import annotations

from typing import Any, Mapping

from django.conf import settings
from django.db import connections

from otel_audit.errors import containment
from otel_audit.event import AuditEvent, Change, Source, Target
from otel_audit.instrumentation._request import scope_and_actor
from otel_audit.instrumentation.django.request import current_django_exchange
from otel_audit.redaction.keys import is_secret_name
from otel_audit.recording import discard_change, hold, record_change, release

#: Models whose rows are framework bookkeeping, not user data (kept as data; lower-case labels).
IGNORED_MODELS = frozenset({"sessions.session", "migrations.migration", "contenttypes.contenttype"})

_SNAPSHOT = "_otel_audit_loaded"
_PENDING = "_otel_audit_pending"


_attnames: dict[type, tuple[str, ...]] = {}


def _fields_of(model: type) -> tuple[str, ...]:
    names = _attnames.get(model)
    if names is None:
        names = tuple(field.attname for field in model._meta.concrete_fields)  # noqa: SLF001
        _attnames[model] = names
    return names


def _label(model: type) -> str:
    return model._meta.label_lower  # noqa: SLF001


def _table(model: type) -> str:
    return model._meta.db_table  # noqa: SLF001


_ignored: dict[type, bool] = {}


def _is_ignored(model: type) -> bool:
    """Whether ``model`` is framework bookkeeping (:data:`IGNORED_MODELS`); cached per class."""
    ignored = _ignored.get(model)
    if ignored is None:
        ignored = _ignored[model] = _label(model) in IGNORED_MODELS
    return ignored


_secret_fields: dict[str, bool] = {}


def _is_secret(name: str) -> bool:
    """Whether a field's values stay out of ``values``: the one secret-name rule (``redaction.keys``),
    asked once per name."""
    secret = _secret_fields.get(name)
    if secret is None:
        if len(_secret_fields) >= 4096:
            _secret_fields.clear()
        secret = _secret_fields[name] = is_secret_name(name)
    return secret


def _shown_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _snapshot(instance: Any) -> dict[str, Any]:
    values = instance.__dict__
    return {name: values[name] for name in _fields_of(type(instance)) if name in values}


def _in_atomic_block(using: Any) -> bool:
    """Whether the connection is inside ``transaction.atomic`` (else: autocommit, one statement
    one transaction)."""
    try:
        return bool(connections[using or "default"].in_atomic_block)
    except Exception:  # noqa: BLE001
        return False


def _post_init(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    try:
        if not _is_ignored(sender):
            instance.__dict__[_SNAPSHOT] = _snapshot(instance)
    except Exception as exc:  # noqa: BLE001
        containment.record("django post_init", exc)


def _pre_save(sender: Any, instance: Any = None, raw: bool = False, update_fields: Any = None, **kwargs: Any) -> None:
    try:
        if raw:
            return
        hold()  # outside a request: the save's statements and its row are one record
        if _is_ignored(sender):
            return
        current = _snapshot(instance)
        pk_name = sender._meta.pk.attname  # noqa: SLF001
        if instance._state.adding:  # noqa: SLF001
            changed = {name: (None, value) for name, value in current.items() if name != pk_name}
        else:
            loaded = instance.__dict__.get(_SNAPSHOT, {})
            changed = {name: (loaded.get(name), value) for name, value in current.items()
                       if name != pk_name and (name not in loaded or loaded[name] != value)}
        if update_fields is not None:
            wanted = {sender._meta.get_field(name).attname for name in update_fields}  # noqa: SLF001
            changed = {name: change for name, change in changed.items() if name in wanted}
        instance.__dict__[_PENDING] = changed
    except Exception as exc:  # noqa: BLE001
        containment.record("django pre_save", exc)


def _model_change(category: str, action: str, instance: Any, changed: Mapping[str, Any] | None, operation: str,
                  table: str | None = None, pk: Any = None, **attributes: Any) -> None:
    """Hand one row's change to the action, with its model label, primary key and changed fields
    (``table``: where its statement wrote, when not the model's own table)."""
    model = type(instance)
    key = pk if pk is not None else instance.pk  # ``pk``: a deleted row's key (Django clears instance.pk)
    change = Change(
        category=category,
        action=action,
        table=table or _table(model),
        type=_label(model),
        id=str(key) if key is not None else None,
        operation=operation,
        fields=tuple(changed) if changed else None,
        origin="django.orm",
        orm=True,
        account=_is_user_model(model),  # named by the policy's identity rules (otel_audit/identity.py)
    )
    if changed:
        change.values = {name: ({} if _is_secret(name) else {"old": _shown_value(old), "new": _shown_value(new)})
                         for name, (old, new) in changed.items()}
    extra = {k.replace("__", "."): v for k, v in attributes.items()}
    exchange = current_django_exchange()
    if exchange is not None and exchange.category == "admin":
        extra["audit.via"] = "admin"
    change.attributes = extra or None
    scope, actor = scope_and_actor()
    fact = AuditEvent(
        category=category,
        action=action,
        outcome="success",
        actor=actor,
        source=scope.source if scope is not None else Source(),
        http=scope.http if scope is not None and scope.kind == "request" else None,
        target=Target(type=change.type, id=change.id),
        changed_fields=change.fields,
        changes=[change],
        attributes=dict(extra),
        origin="django.orm",
        event_id="",  # folded into its action, it needs none (record_change names one if recorded alone)
    )
    record_change(fact, change, None)


_user_model: tuple[Any, Any] = (None, None)  # (settings.AUTH_USER_MODEL, the model it named)


def _is_user_model(model: type) -> bool:
    """``model is get_user_model()``, looked up once per ``AUTH_USER_MODEL`` value."""
    global _user_model
    name = settings.AUTH_USER_MODEL
    cached = _user_model
    if cached[0] != name or cached[1] is None:
        from django.contrib.auth import get_user_model

        cached = _user_model = (name, get_user_model())
    return model is cached[1]


def _post_save(sender: Any, instance: Any = None, created: bool = False, raw: bool = False, using: Any = None,
               **kwargs: Any) -> None:
    if raw:
        return
    try:
        label = _label(sender)
        changed = instance.__dict__.pop(_PENDING, {})
        instance.__dict__[_SNAPSHOT] = _snapshot(instance)
        if label == "admin.logentry" or _is_ignored(sender):
            discard_change(_table(sender), "INSERT" if created else "UPDATE")  # bookkeeping, not the action
        elif created:
            _model_change("data_modification", "create_resource", instance, changed, "INSERT")
        elif changed:
            _model_change("data_modification", "update_resource", instance, changed, "UPDATE")
        else:
            discard_change(_table(sender), "UPDATE")  # saved without a change
    except Exception as exc:  # noqa: BLE001
        containment.record("django post_save", exc)
    finally:
        release(_in_atomic_block(using))


def _collector_delete(wrapped: Any, collector: Any, args: Any, kwargs: Any) -> Any:
    """``Collector.delete`` (every ``Model.delete()`` and ``QuerySet.delete()``): the rows it was given
    are the action's deletions. Hooked here, not by ``pre_delete``/``post_delete`` receivers: a
    listener on those signals takes every model off Django's fast delete (an extra transaction per
    ``instance.delete()``, a SELECT of every row before a bulk delete). Rows Django deletes without
    loading them (fast deletes) are the statement's entry alone: table and row count."""
    try:
        doomed = [(model, instance, instance.pk) for model, instances in collector.data.items()
                  if not model._meta.auto_created for instance in instances]  # noqa: SLF001
        hold()  # outside a request: the delete's statements and its rows are one record
    except Exception as exc:  # noqa: BLE001
        containment.record("django delete", exc)
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException:
        release(True)  # nothing deleted: the hold ends, the transaction's end closes the record
        raise
    try:
        for model, instance, pk in doomed:
            if _is_ignored(model):
                discard_change(_table(model), "DELETE")
            else:
                _model_change("data_modification", "delete_resource", instance, None, "DELETE", pk=pk)
    except Exception as exc:  # noqa: BLE001
        containment.record("django delete", exc)
    finally:
        release(_in_atomic_block(collector.using))
    return result


def _role_names(model: type, pks: Any) -> list[str]:
    label = _label(model)
    if label == "auth.group":
        return sorted(model._default_manager.filter(pk__in=pks).values_list("name", flat=True))  # noqa: SLF001
    if label == "auth.permission":
        rows = model._default_manager.filter(pk__in=pks).values_list("content_type__app_label", "codename")  # noqa: SLF001
        return sorted(f"{app}.{codename}" for app, codename in rows)
    return [str(pk) for pk in pks]


def _m2m_changed(sender: Any, instance: Any = None, action: str = "", reverse: bool = False, model: Any = None,
                 pk_set: Any = None, **kwargs: Any) -> None:
    """User <-> Group / Permission membership: a role grant or revocation per user (it takes over
    the statement on the membership table)."""
    try:
        if action not in ("post_add", "post_remove", "pre_clear"):
            return
        user_side = _is_user_model(type(instance))
        role_model = model if user_side else type(instance)
        if _label(role_model) not in ("auth.group", "auth.permission") or not (user_side or _is_user_model(model)):
            return
        if action == "pre_clear":  # post_clear has no pk_set: capture what is about to go
            pk_set = _related_pks(sender, instance, model)
        if not pk_set:
            return
        grant = action == "post_add"
        kind = "groups" if _label(role_model) == "auth.group" else "permissions"
        if user_side:
            users, roles = [instance], _role_names(role_model, pk_set)
        else:
            users = list(model._default_manager.filter(pk__in=pk_set))  # noqa: SLF001
            roles = _role_names(role_model, [instance.pk])
        for user in users:
            _model_change("authorization", "grant_role" if grant else "revoke_role", user, None,
                          "INSERT" if grant else "DELETE", table=sender._meta.db_table,  # noqa: SLF001
                          audit__role__names=roles, audit__role__kind=kind)
    except Exception as exc:  # noqa: BLE001
        containment.record("django m2m_changed", exc)


def _related_pks(through: Any, instance: Any, other_model: Any) -> set[Any]:
    """Primary keys of ``other_model`` rows linked to ``instance`` through the ``through`` table."""
    own = next(f for f in through._meta.fields if f.related_model is type(instance))  # noqa: SLF001
    other = next(f for f in through._meta.fields if f.related_model is other_model)  # noqa: SLF001
    rows = through._default_manager.filter(**{own.attname: instance.pk})  # noqa: SLF001
    return set(rows.values_list(other.attname, flat=True))
