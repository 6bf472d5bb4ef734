"""Django outside a request (a management command, a worker, a shell): one record per transaction,
and one per ORM save or delete in autocommit - its statement and its row change are one record."""

from __future__ import annotations

from tests.instrumentation.apps import from_sink
from tests.instrumentation.test_django import django_example  # noqa: F401 - the configured example project


def test_autocommit_saves_and_an_atomic_block_outside_requests(audit, instrument, django_example):  # noqa: F811
    from django.contrib.auth import get_user_model
    from django.db import connections, transaction

    from otel_audit.instrumentation.dbapi import Sqlite3AuditInstrumentor
    from otel_audit.instrumentation.django import DjangoAuditInstrumentor

    connections.close_all()
    instrument(DjangoAuditInstrumentor(), Sqlite3AuditInstrumentor())
    from notes.models import Note

    owner = get_user_model().objects.get(username="alice")
    note = Note.objects.create(owner=owner, title="from a worker")  # autocommit: one record
    with transaction.atomic():  # one transaction: one record with both rows
        Note.objects.create(owner=owner, title="batch 1")
        note.title = "renamed"
        note.save()
    note_id = str(note.pk)
    note.delete()
    connections.close_all()
    records = [r for r in from_sink(audit.records()) if r.get("audit.category") not in ("audit_system",)]
    assert [r.get("audit.action") for r in records] == ["create_resource", "update_resource", "delete_resource"]
    created, batch, deleted = records
    assert created.get("audit.changes") == [{"action": "create_resource", "type": "notes.note", "table": "notes_note",
                                             "id": note_id, "rows": 1,
                                             "fields": ["owner_id", "title", "body", "updated"]}]
    # the atomic block: the update is the primary change, the create is listed with it
    assert sorted(c["action"] for c in batch.get("audit.changes")) == ["create_resource", "update_resource"]
    assert deleted.get("audit.target.id") == note_id and deleted.get("audit.actor.type") == "system"
    assert not any(r.get("http.request.method") for r in records)


def test_deletes_keep_djangos_fast_path_and_are_still_recorded(audit, instrument, django_example):  # noqa: F811
    """No ``pre_delete``/``post_delete`` receiver of ours: a listener would take every model off Django's
    fast delete (an extra BEGIN/COMMIT per ``instance.delete()``). The rows are still the action's,
    with their type and id; a bulk delete Django does without loading rows is its statement's entry."""
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.db.models import signals

    from otel_audit.instrumentation.dbapi import Sqlite3AuditInstrumentor
    from otel_audit.instrumentation.django import DjangoAuditInstrumentor

    connections.close_all()
    instrument(DjangoAuditInstrumentor(), Sqlite3AuditInstrumentor())
    from notes.models import Note

    assert not signals.pre_delete.has_listeners(Note) and not signals.post_delete.has_listeners(Note)
    owner = get_user_model().objects.get(username="alice")
    note = Note.objects.create(owner=owner, title="doomed")
    note_id = str(note.pk)
    Note.objects.create(owner=owner, title="bulk 1")
    Note.objects.create(owner=owner, title="bulk 2")
    statements: list[str] = []
    with connections["default"].execute_wrapper(lambda execute, sql, *rest: statements.append(sql) or execute(sql, *rest)):
        note.delete()
    assert [sql.split()[0] for sql in statements] == ["DELETE"]  # the fast path: no transaction around it
    Note.objects.filter(title__startswith="bulk").delete()
    connections.close_all()
    records = [r for r in from_sink(audit.records()) if r.get("audit.action") == "delete_resource"]
    single, bulk = records
    assert single.get("audit.target.type") == "notes.note" and single.get("audit.target.id") == note_id
    assert bulk.get("audit.changes") == [{"action": "delete_resource", "type": "notes_note", "rows": 2}]


def test_values_of_secret_named_fields_never_reach_the_change(audit, instrument, django_example):  # noqa: F811
    """A model's secret-named field (the one rule, ``redaction.keys.is_secret_name``) is listed as
    changed, its values never kept — not even at ``full`` level, where other fields keep old and new."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    from otel_audit.instrumentation.dbapi import Sqlite3AuditInstrumentor
    from otel_audit.instrumentation.django import DjangoAuditInstrumentor, models as django_models
    from otel_audit.recording import hold, release

    connections.close_all()
    instrument(DjangoAuditInstrumentor(), Sqlite3AuditInstrumentor())
    from notes.models import Note

    note = Note.objects.create(owner=get_user_model().objects.get(username="alice"), title="integration")
    # An integration row as many apps have one: a name and an API token, saved together (in autocommit:
    # held open like a save, then its record written).
    hold()
    django_models._model_change("data_modification", "update_resource", note,
                                {"title": ("integration", "billing"), "api_token": ("tok-old", "tok-new")}, "UPDATE")
    release(False)
    connections.close_all()
    (change,) = [c for e in audit.events for c in e.changes if c.fields == ("title", "api_token")]
    assert change.values == {"title": {"old": "integration", "new": "billing"}, "api_token": {}}
    assert "tok-" not in str([e.changes for e in audit.events])
