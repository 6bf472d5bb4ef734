"""The Django example audited twice: in-process through Django's test client, and served by
gunicorn under the real ``opentelemetry-instrument`` launcher with records collected over OTLP."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.instrumentation.apps import one_record_per_request, from_otlp, from_sink, one, where
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.procs import REPO, Server, base_env, free_port, launcher

DJANGO_APP = REPO / "examples" / "django_app"
ALICE, BOB, CAROL = "1", "2", "3"


def check_trail(records, facts) -> None:
    """What an auditor asks of the scripted session (examples/django_app/traffic.py)."""
    note = str(facts["note_id"])
    failed = one(records, audit__action="login_failed", audit__origin="django.auth")
    # the tried name is only a pseudonym by default (it may be a mistyped password)
    assert failed.get("audit.outcome") == "failure" and failed.get("user.name").startswith("[HMAC:")
    assert failed.get("audit.attempted_username") == failed.get("user.name") and "bob" not in str(failed.attributes)
    assert "password" not in str(failed.attributes).lower().replace("password_", "")
    logins = where(records, audit__action="login", audit__origin="django.auth")
    assert sorted(r.get("enduser.id") for r in logins) == [ALICE, BOB]
    logout = one(records, audit__action="logout", audit__origin="django.auth")
    assert logout.get("enduser.id") == BOB

    created = one(records, audit__action="create_resource", audit__target__type="notes.note", audit__target__id=note)
    assert created.get("enduser.id") == BOB and created.get("http.route") == "/notes/"
    assert created.get("audit.category") == "data_modification"
    updated = one(records, audit__action="update_resource", audit__target__type="notes.note")
    assert "body" in updated.get("audit.changes.fields") and "title" not in updated.get("audit.changes.fields")
    deleted = one(records, audit__action="delete_resource", audit__target__type="notes.note", audit__target__id=note)
    assert deleted.get("enduser.id") == BOB and deleted.get("http.route") == "/notes/<int:pk>/delete/"

    denied = where(records, audit__outcome="denied")
    assert {(r.get("enduser.id"), r.get("http.route")) for r in denied} == {
        (ALICE, "/notes/<int:pk>/delete/"), (BOB, "/staff/users/<int:pk>/groups/")}
    grants = where(records, audit__category="authorization", audit__action="grant_role", audit__target__id=CAROL)
    assert sorted(tuple(r.get("audit.role.names")) for r in grants) == [("editors",), ("staff",)]
    assert {r.get("enduser.id") for r in grants} == {ALICE}

    admin_add = one(records, audit__category="admin", audit__action="create_resource")
    assert admin_add.get("enduser.id") == ALICE and admin_add.get("audit.target.type") == "notes.note"
    admin_requests = [r for r in records if r.get("audit.category") == "admin" and r.get("audit.origin") == "django"]
    assert admin_requests and all((r.get("http.route") or "").startswith("/admin/") for r in admin_requests)

    assert deleted.get("audit.changes") == [{"action": "delete_resource", "type": "notes.note", "table": "notes_note",
                                             "id": note, "rows": 1}]
    # The quiet default leaves out the three successful GETs of the login form (plain reads); the
    # admin-site GET and the crashing GET are recorded.
    one_record_per_request(records, facts["requests"], facts.get("readiness"), quiet={("GET", "/accounts/login/"): 3})

    (crash,) = where(records, url__path="/notes/crash/", audit__origin="django")
    assert crash.get("audit.outcome") == "failure" and crash.get("error.type") == "RuntimeError"
    assert crash.get("http.response.status_code") == 500 and crash.get("enduser.id") == BOB


@pytest.fixture(scope="module")
def django_example(tmp_path_factory):
    """Configure Django once for this process with the example's settings and a fresh database."""
    db = tmp_path_factory.mktemp("django") / "notes.sqlite3"
    saved = {key: os.environ.get(key) for key in ("NOTES_DB", "DJANGO_SETTINGS_MODULE")}
    os.environ["NOTES_DB"] = str(db)
    os.environ["DJANGO_SETTINGS_MODULE"] = "notesite.settings"
    sys.path.insert(0, str(DJANGO_APP))
    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    # Django reads its settings once per process: a later module's fresh database (this fixture is
    # module-scoped, and other test modules import it) must be pointed at explicitly, or it would
    # share the first module's rows (a user promoted there is no longer promotable here).
    connections.close_all()
    for databases in (settings.DATABASES, connections.databases):
        databases["default"]["NAME"] = str(db)
    call_command("migrate", verbosity=0)
    yield db
    for key, value in saved.items():  # later tests' subprocesses must not inherit this project
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_django_example_in_process(audit, instrument, django_example):
    from django.db import connections
    from django.test import Client

    from examples.django_app.traffic import run
    from otel_audit.instrumentation.dbapi import Sqlite3AuditInstrumentor
    from otel_audit.instrumentation.django import DjangoAuditInstrumentor

    connections.close_all()  # the next connection is made through the instrumented driver
    instrument(DjangoAuditInstrumentor(), Sqlite3AuditInstrumentor())
    facts = run(lambda: Client(raise_request_exception=False))
    assert facts["login_failed"] == 200 and facts["login"] == 302 and facts["forbidden_delete"] == 403
    assert facts["grant"] == 200 and facts["admin_add"] == 302 and facts["crash"] == 500
    records = from_sink(audit.records())
    check_trail(records, facts)
    # Changed values are kept for `full` level only, and never for secret fields.
    (update,) = [e for e in audit.events if e.action == "update_resource" and e.target.type == "notes.note"]
    assert update.changes[0].values["body"] == {"old": "draft", "new": "final"}
    assert "values" not in str(one(records, audit__action="update_resource").get("audit.changes"))  # metadata level
    # Bob's login is one record: the signal names it, the last_login update is its change.
    (bob_login,) = [e for e in audit.events if e.action == "login" and e.actor.id == BOB]
    assert [(c.action, c.fields) for c in bob_login.changes] == [("update_user", ("last_login",))]


def migrated_example(tmp_path) -> dict[str, str]:
    """A fresh database for the example served in a subprocess; the environment that points at it."""
    app_env = {"NOTES_DB": str(tmp_path / "notes.sqlite3"), "DJANGO_SETTINGS_MODULE": "notesite.settings",
               "PYTHONPATH": os.pathsep.join([str(REPO), str(DJANGO_APP)])}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=DJANGO_APP, check=True,
                   env={**os.environ, **app_env})
    return app_env


def test_django_example_under_gunicorn_and_the_launcher(tmp_path):
    app_env = migrated_example(tmp_path)
    port = free_port()
    with OtlpReceiver() as receiver:
        env = base_env(
            OTEL_LOGS_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_AUDIT_QUIET="1",
            **app_env,
        )
        server = Server(
            [launcher(), "gunicorn", "notesite.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "2"],
            env, f"http://127.0.0.1:{port}/health/", cwd=DJANGO_APP, log_path=tmp_path / "server.log",
        ).wait_ready()
        try:
            from examples.django_app.traffic import HttpClient, run

            facts = run(lambda: HttpClient(f"http://127.0.0.1:{port}"))
        finally:
            server.stop()
        records = from_otlp(receiver.wait_for(
            lambda recs: sum(r.event_name == "audit.audit_system.stop" for r in recs) >= 2))
    assert facts["crash"] == 500 and facts["admin_add"] == 302, server.output()
    audit_records = [r for r in records if r.event_name.startswith("audit.")]
    check_trail(audit_records, {**facts, "readiness": ("GET", "/health/")})
    # contrib's Django tracing is active under the launcher too: same trace id for the request
    # record and the row change it caused.
    (create_request,) = where(audit_records, url__path="/notes/", http__request__method="POST", audit__origin="django")
    created = one(audit_records, audit__action="create_resource", audit__target__type="notes.note",
                  audit__target__id=str(facts["note_id"]))
    assert len(create_request.trace_id) == 32 and created.trace_id == create_request.trace_id


def test_django_security_log_lines_become_authorization_events(audit, instrument, django_example):
    from django.test import Client

    from otel_audit.instrumentation.django import DjangoAuditInstrumentor
    from otel_audit.instrumentation.logging import LoggingAuditInstrumentor

    instrument(DjangoAuditInstrumentor(), LoggingAuditInstrumentor())
    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "bob", "password": "bob-pw"})
    assert response.status_code == 403
    (csrf,) = [e for e in audit.events if e.origin == "logging.django.security.csrf"]
    assert (csrf.category, csrf.action, csrf.outcome) == ("authorization", "csrf", "denied")
    assert csrf.http.path == "/accounts/login/"  # attached to the request it refused
    assert not audit.find("authentication", "login")  # the view never ran


def test_an_anonymous_request_leaves_request_user_to_the_view(all_requests_audit, instrument, django_example,
                                                              monkeypatch):
    """Without the session's user keys Django's own get_user can only answer AnonymousUser, so the
    actor is anonymous without loading it; a view that uses ``request.user`` loads it as it would
    unaudited, and a signed-in request is still loaded (once) and named."""
    from django.contrib import auth
    from django.test import Client

    from otel_audit.instrumentation.django import DjangoAuditInstrumentor

    instrument(DjangoAuditInstrumentor())
    loads: list[str] = []
    real_get_user = auth.get_user

    def counting_get_user(request):
        loads.append(request.path)
        return real_get_user(request)

    monkeypatch.setattr(auth, "get_user", counting_get_user)
    anonymous = Client()
    assert anonymous.get("/health/").status_code == 200
    assert loads == []  # the view never used request.user: nobody loaded it
    assert anonymous.get("/notes/").status_code == 302  # login_required reads request.user
    assert loads == ["/notes/"]
    bob = Client()
    assert bob.login(username="bob", password="bob-pw")
    loads.clear()
    assert bob.get("/health/").status_code == 200 and bob.get("/notes/").status_code == 200
    assert loads == ["/health/", "/notes/"]  # one load per request, the actor's, handed on to the view

    records = from_sink(all_requests_audit.records())
    health = where(records, url__path="/health/", audit__origin="django")
    assert [(r.get("audit.actor.type"), r.get("enduser.id")) for r in health] == [("anonymous", None), ("user", BOB)]
    (bob_notes,) = [r for r in where(records, url__path="/notes/") if r.get("enduser.id") == BOB]
    assert bob_notes.get("http.response.status_code") == 200
