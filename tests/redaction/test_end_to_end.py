"""End to end at ``request`` level: a real Flask app (test client, real instrumentation, real runtime)
exporting over OTLP/HTTP to a real receiver. No secret appears anywhere in the bytes it receives."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import flask
import pytest

from otel_audit import runtime
from otel_audit.event import AuditEvent, DbInfo
from otel_audit.instrumentation.flask import FlaskAuditInstrumentor
from tests.support.otlp_receiver import OtlpReceiver

HMAC_KEY = "e2e-hmac-key-never-exported-0123456789"
PASSWORD = "correct-horse-battery-staple"
CARD = "4111111111111111"
IBAN = "DE89370400440532013000"
BEARER = "tok9f8e7d6c5b4a39281706abcdef"
SQL_EMAIL = "bob@example.com"

POLICY = """
defaults: {level: request}
redaction:
  detectors: {credit_card: partial}
  attributes: {user.name: hmac}
"""


def create_app() -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = "e2e-test-flask-secret"

    @app.post("/login")
    def login() -> Any:
        if flask.request.form.get("password") == PASSWORD:
            flask.session["user_id"] = "u-bob"
            return flask.redirect("/home")
        return "bad", 401

    @app.post("/api/payments")
    def payments() -> Any:
        query = f"INSERT INTO payers (email, iban) VALUES ('{SQL_EMAIL}', '{flask.request.json['iban']}')"
        runtime.record_event(
            AuditEvent(category="data_modification", action="insert", db=DbInfo(system="sqlite", collection="payers", query_text=query))
        )
        return {"ok": True}, 201

    return app


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    for name in list(os.environ):
        if name.startswith(("OTEL_AUDIT_", "OTEL_EXPORTER_OTLP", "OTEL_LOGS_EXPORTER")):
            monkeypatch.delenv(name)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_AUDIT_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        monkeypatch.setenv("OTEL_AUDIT_POLICY", str(policy))
        monkeypatch.setenv("OTEL_AUDIT_HMAC_KEY", HMAC_KEY)
        monkeypatch.setenv("OTEL_AUDIT_HMAC_KEY_ID", "e2e-key-1")
        monkeypatch.setenv("OTEL_AUDIT_QUIET", "1")
        runtime.reset_for_tests()
        instrumentor = FlaskAuditInstrumentor()
        instrumentor.instrument()
        try:
            yield receiver
        finally:
            instrumentor.uninstrument()
            runtime.reset_for_tests()


def test_no_secret_reaches_the_otlp_receiver(exported: OtlpReceiver) -> None:
    client = create_app().test_client()
    assert client.post("/login", data={"username": "bob", "password": PASSWORD}).status_code == 302
    session_cookie = client.get_cookie("session").value
    response = client.post(
        "/api/payments?note=1",
        json={"amount": 12, "card": CARD, "iban": IBAN, "holder": {"name": "Bob"}},
        headers={"Authorization": f"Bearer {BEARER}"},
    )
    assert response.status_code == 201
    runtime.get_runtime().provider.force_flush()
    records = exported.wait_for(lambda recs: sum("url.path" in r.attributes for r in recs) >= 2)

    raw = b"".join(exported.raw_bodies)
    for secret in (PASSWORD, CARD, IBAN, BEARER, SQL_EMAIL, session_cookie, HMAC_KEY):
        assert secret.encode() not in raw, f"{secret[:6]}... leaked"

    by_path = {r.attributes.get("url.path"): r for r in records if "url.path" in r.attributes}
    login, payment = by_path["/login"], by_path["/api/payments"]
    assert login.event_name == "audit.authentication.login"  # the policy's built-in login route
    assert login.attributes["audit.level"] == "request"
    assert login.attributes["audit.request.body"]  # the body was exported, redacted
    assert "password" in str(login.attributes["audit.request.body"])
    assert payment.attributes["http.request.header.authorization"] == ["[REDACTED:secret_key]"]
    assert payment.attributes["http.request.header.cookie"] == ["[REDACTED:secret_key]"]
    body = payment.attributes["audit.request.body"]
    assert body["card"] == "[REDACTED:credit_card:****1111]"  # the policy's partial action
    assert body["iban"].startswith("[HMAC:") and body["holder"] == {"name": "Bob"}
    assert "audit.request.body" in payment.attributes["audit.redaction.fields"]
    assert payment.attributes["audit.redaction.key_id"] == "e2e-key-1"

    [insert] = [r for r in records if r.event_name == "audit.data_modification.insert"]
    assert insert.attributes["db.query.text"] == "INSERT INTO payers (email, iban) VALUES (?, ?)"
    assert insert.attributes["audit.redaction.count"] >= 1
    for record in records:
        assert "audit.redaction.count" in record.attributes
