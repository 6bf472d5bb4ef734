"""The stories drive framework test clients too (in-process, under the ``audit_trail`` fixture):
Django's test client, with its form posts, CSRF cookie and session, makes the rules fire."""

from __future__ import annotations

import pytest

from otel_audit.testing.attacks import Login, Request, StoryClient
from tests.instrumentation.test_django import django_example  # noqa: F401 - the configured example project

pytest.importorskip("sigma")
pytest.importorskip("django")

LOGIN = Login("/accounts/login/", prime="/accounts/login/")


@pytest.fixture
def django_client(django_example, audit_trail):  # noqa: F811
    from django.db import connections
    from django.test import Client

    connections.close_all()  # the next connection is made through the instrumented driver
    return lambda: StoryClient(Client(raise_request_exception=False))


def test_django_test_client_brute_force_and_escalation_fire(django_client, audit_trail, attacks) -> None:
    attacks.brute_force(django_client(), LOGIN, "bob", attempts=5)
    audit_trail.assert_detects("brute_force")
    attacks.escalate_privilege(django_client(), LOGIN, "alice", "alice-pw", Request("POST", "/staff/users/3/promote/",
                                                                                    data={}))
    alert = audit_trail.assert_detects("privilege_escalation")
    assert alert.actors == ["alice"]


def test_django_test_client_benign_session_fires_nothing(django_client, audit_trail, attacks) -> None:
    attacks.benign_session(django_client(), LOGIN, "bob", "bob-pw",
                           work=[Request("POST", "/notes/", data={"title": "plan", "body": "draft"}),
                                 Request("POST", "/notes/{id}/delete/", data={})])
    audit_trail.assert_audited(event="audit.authentication.login", actor="bob")
    audit_trail.assert_audited(event="audit.data_modification.delete_resource")
    audit_trail.assert_no_detections()
    # Evaluating the trail (SQLite, in this process, under the sqlite3 adapter) is not audited itself:
    # no transaction was opened for its ``logs`` table (it would fold into the app's next one).
    from otel_audit.context import current_scope

    scope = current_scope()
    assert scope is None or not any(change.table == "logs" for change in scope.changes)
