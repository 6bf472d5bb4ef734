"""Key rules (recursive, normalised, headers, forms, JSON strings), per-attribute actions, HMAC
pseudonyms, SQL sanitising, bound parameters, allow-list mode and the redaction summary."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from otel_audit.redaction import Redactor, sanitize_sql

KEY = "unit-test-hmac-key-0123456789abcdef"
ENV = {"OTEL_AUDIT_HMAC_KEY": KEY, "OTEL_AUDIT_HMAC_KEY_ID": "k2024"}


def make(section=None, env=ENV) -> Redactor:
    return Redactor.from_config(section, environ=env)


@pytest.mark.parametrize(
    "key",
    ["password", "Password", "user_password", "X-Api-Key", "apiKey", "client-secret", "access_token",
     "refresh.token", "id_token", "private_key", "PIN", "cvv", "otp", "set-cookie", "csrf", "Authorization"],
)
def test_secret_key_names_are_masked_at_any_depth(key: str) -> None:
    body = {"a": [{"b": {key: "hunter2-value"}}], "note": "fine"}
    result = make().redact({"audit.request.body": body})
    masked = result.attributes["audit.request.body"]["a"][0]["b"][key]
    assert masked == "[REDACTED:secret_key]"
    assert result.attributes["audit.request.body"]["note"] == "fine"
    assert "hunter2-value" not in json.dumps(result.attributes)


def test_key_rules_reach_into_json_strings_form_bodies_and_headers() -> None:
    attrs = {
        "audit.request.body": json.dumps({"user": "bob", "creds": {"password": "pw-in-json"}}),
        "app.form": "username=bob&password=pw-in-form&remember=1",
        "http.request.header.authorization": ["Bearer abc.def.ghi"],
        "http.request.header.cookie": ["sessionid=pw-in-cookie; theme=dark"],
        "http.request.header.x-api-key": ["pw-in-header"],
        "http.request.header.accept": ["application/json"],
        "url.query": "q=cats&access_token=pw-in-query&code=pw-oauth-code",
    }
    result = make().redact(attrs)
    text = json.dumps(result.attributes)
    for secret in ("pw-in-json", "pw-in-form", "abc.def.ghi", "pw-in-cookie", "pw-in-header", "pw-in-query", "pw-oauth-code"):
        assert secret not in text
    assert result.attributes["http.request.header.accept"] == ["application/json"]
    assert json.loads(result.attributes["audit.request.body"])["user"] == "bob"
    assert result.attributes["app.form"].startswith("username=bob&password=[REDACTED:secret_key]")
    assert result.attributes["url.query"].startswith("q=cats&")


def test_code_is_a_secret_only_in_urls() -> None:
    result = make().redact({"audit.request.body": {"country": {"code": "DE-BY"}}, "url.query": "code=xyzzy123"})
    assert result.attributes["audit.request.body"] == {"country": {"code": "DE-BY"}}
    assert "xyzzy123" not in result.attributes["url.query"]


def test_bookkeeping_attributes_are_protected() -> None:
    attrs = {
        "audit.event_id": "0190f1c2-aaaa-7bbb-8ccc-123456789abc",
        "audit.category": "authentication",
        "audit.action": "password_reset",
        "audit.outcome": "success",
        "audit.policy.id": "secret-policy",
        "audit.policy.hash": "sha256:" + "ab" * 32,
        "audit.chain.prev": "token=abc123456789",
        "ocsf.class_uid": 3002,
    }
    result = make({"allow": [{"attributes": ["nothing.*"]}]}).redact(attrs, category="authentication", level="metadata")
    assert result.attributes == attrs
    assert result.count == 0


def test_session_id_is_pseudonymised_who_and_where_are_kept() -> None:
    attrs = {"session.id": "s3ss10n-abcdef", "enduser.id": "alice@example.com", "user.name": "alice@example.com",
             "client.address": "203.0.113.9"}
    result = make().redact(attrs)
    assert result.attributes["session.id"].startswith("[HMAC:")
    assert result.attributes["enduser.id"] == "alice@example.com"
    assert result.attributes["client.address"] == "203.0.113.9"
    assert result.key_id == "k2024"


def test_gdpr_policy_pseudonymises_who_everywhere_including_the_body() -> None:
    section = {"attributes": {"enduser.id": "hmac", "user.name": "hmac", "client.address": "drop"}}
    attrs = {"enduser.id": "alice-id-77", "user.name": "Alice Example", "client.address": "203.0.113.9",
             "audit.actor.before": "alice-id-77"}
    result = make(section).redact(attrs, "Alice Example login: success", category="authentication", level="metadata")
    assert result.attributes["enduser.id"] == result.attributes["audit.actor.before"]  # still correlates
    assert result.attributes["enduser.id"].startswith("[HMAC:")
    assert "client.address" not in result.attributes
    assert "Alice Example" not in result.body and result.body.endswith("login: success")
    assert set(result.fields) >= {"enduser.id", "user.name", "client.address", "body"}


def test_hmac_pseudonyms_are_stable_per_key_and_change_with_the_key() -> None:
    attrs = {"audit.request.body": {"email": "bob@example.com"}}
    first = make().redact(attrs).attributes["audit.request.body"]["email"]
    again = make().redact(attrs).attributes["audit.request.body"]["email"]
    other = make(env={"OTEL_AUDIT_HMAC_KEY": "another-key-0123456789abcdef"}).redact(attrs)
    assert first == again and first.startswith("[HMAC:")
    assert other.attributes["audit.request.body"]["email"] != first
    assert other.key_id and other.key_id != "k2024" and KEY not in other.key_id


def test_hmac_key_never_appears_in_records_repr_or_errors() -> None:
    redactor = make()
    result = redactor.redact({"session.id": KEY, "x": f"password={KEY}", "y": {"token": KEY}}, KEY)
    assert KEY not in json.dumps(result.attributes) + str(result.body) + repr(redactor) + str(result.summary())
    with pytest.raises(Exception) as info:
        Redactor.from_config(None, environ={"OTEL_AUDIT_HMAC_KEY": "short-key"})
    assert "short-key" not in str(info.value) and "OTEL_AUDIT_HMAC_KEY" in str(info.value)


def test_missing_key_generates_one_per_process_and_says_so_once() -> None:
    code = (
        "from otel_audit.redaction import Redactor\n"
        "r = Redactor.from_config(None, environ={})\n"
        "a = r.redact({'session.id': 'abc123'})\n"
        "b = Redactor.from_config(None, environ={}).redact({'session.id': 'abc123'})\n"
        "assert a.attributes == b.attributes, (a, b)\n"
        "assert a.key_id.startswith('ephemeral-')\n"
        "m = Redactor.from_config({'hmac': {'missing_key': 'mask'}}, environ={}).redact({'session.id': 'abc123'})\n"
        "assert m.attributes['session.id'] == '[REDACTED:session.id]', m\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("OTEL_AUDIT_HMAC_KEY is not set") == 1


@pytest.mark.parametrize(
    ("action", "expected"),
    [("mask", "[REDACTED:credit_card]"), ("partial", "[REDACTED:credit_card:****1111]"), ("drop", None)],
)
def test_actions_per_detector(action: str, expected: str | None) -> None:
    result = make({"detectors": {"credit_card": action}}).redact({"note": "card 4111-1111-1111-1111", "other": "ok"})
    if expected is None:
        assert "note" not in result.attributes and result.attributes["other"] == "ok"
    else:
        assert result.attributes["note"] == f"card {expected}"


def test_custom_detector_with_validator_and_key_rule() -> None:
    section = {
        "custom_detectors": [
            {"name": "employee_card", "pattern": r"\bEMP\d{16}\b", "action": "hmac"},
            {"name": "loyalty", "pattern": r"\b\d{16}\b", "validator": "luhn", "action": "mask"},
        ],
        "keys": [{"match": ["x-internal-*", "*_pin"], "action": "mask"}, {"match": "token_count", "action": "keep"}],
        "detectors": {"email": "off"},
    }
    attrs = {
        "a": "EMP1234567890123456 and 4111111111111111 and 1234567890123456 and bob@example.com",
        "http.request.header.x-internal-route": ["r1"],
        "audit.request.body": {"door_pin": 1234, "token_count": 17},
    }
    result = make(section).redact(attrs)
    text = result.attributes["a"]
    assert "EMP1234" not in text and text.startswith("[HMAC:")
    assert "4111111111111111" not in text and "1234567890123456" in text  # validator: Luhn-invalid kept
    assert "bob@example.com" in text  # email detector switched off
    assert result.attributes["http.request.header.x-internal-route"] == ["[REDACTED:key_rule]"]
    assert result.attributes["audit.request.body"] == {"door_pin": "[REDACTED:key_rule]", "token_count": 17}


def test_sql_literals_are_replaced_unless_raw_text_is_allowed() -> None:
    query = "INSERT INTO users (email, age, flags) VALUES ('bob@example.com', 42, 0xFF)"
    result = make().redact({"db.query.text": query})
    assert result.attributes["db.query.text"] == "INSERT INTO users (email, age, flags) VALUES (?, ?, ?)"
    raw = make({"sql": {"raw_text": True}}).redact({"db.query.text": query})
    assert raw.attributes["db.query.text"].startswith("INSERT INTO users (email, age, flags) VALUES ('[HMAC:")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE id IN (1, 2, 3) AND n = 'it''s'", "SELECT * FROM t WHERE id IN (?) AND n = ?"),
        ("SELECT a1, \"Col 2\" FROM t2 WHERE x = $1 AND y = :name AND z = ?", "SELECT a1, \"Col 2\" FROM t2 WHERE x = $1 AND y = :name AND z = ?"),
        ("UPDATE t SET v = E'a\\'b', w = 1.5e3 -- note 7", "UPDATE t SET v = ?, w = ? -- note 7"),
        ("SELECT $$dollar 'quoted'$$, X'0A'", "SELECT ?, ?"),
        ("SELECT * FROM t WHERE secret = 'unterminated", "SELECT * FROM t WHERE secret = ?"),
    ],
)
def test_sql_sanitiser(sql: str, expected: str) -> None:
    assert sanitize_sql(sql) == expected


def test_bound_parameters_only_at_full_level_and_redacted() -> None:
    attrs = {"db.query.parameters": ["bob@example.com", 42, "hunter2"], "db.query.text": "SELECT 1"}
    request = make().redact(attrs, level="request")
    assert "db.query.parameters" not in request.attributes and "db.query.parameters" in request.fields
    full = make().redact(attrs, level="full")
    params = full.attributes["db.query.parameters"]
    assert params[0].startswith("[HMAC:") and params[1:] == [42, "hunter2"]


def test_allow_list_mode_is_fail_closed_per_category_and_level() -> None:
    section = {"allow": [{"categories": ["http"], "levels": ["request"], "attributes": ["http.request.method", "url.path", "enduser.id"]}]}
    attrs = {"audit.event_id": "e", "http.request.method": "GET", "url.path": "/x", "enduser.id": "42",
             "http.request.header.x-new-thing": ["v"], "user_agent.original": "curl/8"}
    result = make(section).redact(attrs, category="http", level="request")
    assert result.attributes == {"audit.event_id": "e", "http.request.method": "GET", "url.path": "/x", "enduser.id": "42"}
    assert sorted(result.fields) == ["http.request.header.x-new-thing", "user_agent.original"]
    other = make(section).redact(attrs, category="authentication", level="request")
    assert other.attributes == attrs  # no allow rule for this category


def test_summary_names_fields_never_values() -> None:
    result = make().redact({"a": "mail bob@example.com", "b": "clean text here", "session.id": "abc123"})
    summary = result.summary()
    assert summary["audit.redaction.count"] == 2
    assert summary["audit.redaction.fields"] == ["a", "session.id"]
    assert summary["audit.redaction.key_id"] == "k2024"
    assert make().redact({"b": "clean"}).summary() == {"audit.redaction.count": 0}


def test_overlapping_findings_take_the_strictest_action() -> None:
    """``postgres://app:pw@db.internal`` is a URL password to one detector and, read as
    ``pw@db.internal``, an e-mail to another: the region is masked (a secret), never pseudonymised
    (an HMAC of a password would let records be joined on it)."""
    redactor = Redactor.from_config(None, environ={"OTEL_AUDIT_HMAC_KEY": "overlap-test-key-0123456789"})
    text = "database_url = postgres://app:CpHDjPxNOTG3@db.internal:5432/prod"
    redacted = redactor.redact_text(text)
    assert "CpHDjPxNOTG3" not in redacted
    assert "[HMAC:" not in redacted and "[REDACTED:url_credentials]" in redacted
    # The order of strictness: drop > mask > hmac > partial, whichever detector found the region.
    partial_url = Redactor.from_config({"detectors": {"url_credentials": "partial", "email": "hmac"}}, environ={"OTEL_AUDIT_HMAC_KEY": "overlap-test-key-0123456789"})
    assert "[HMAC:" in partial_url.redact_text(text)
    dropped = Redactor.from_config({"detectors": {"email": "drop"}}, environ={"OTEL_AUDIT_HMAC_KEY": "overlap-test-key-0123456789"})
    assert dropped.redact({"note": text}).attributes == {}


def test_host_header_is_the_servers_address_and_stays_readable() -> None:
    """``Host: 10.1.2.3:8080`` names the server (kept, like ``server.address``); the same address
    in free text is still pseudonymised."""
    redactor = Redactor.from_config(None, environ={"OTEL_AUDIT_HMAC_KEY": "host-header-test-key-0123456789"})
    result = redactor.redact({"http.request.header.host": ["10.1.2.3:8080"], "app.note": "from 10.1.2.3"}, None)
    assert result.attributes["http.request.header.host"] == ["10.1.2.3:8080"]
    assert "10.1.2.3" not in result.attributes["app.note"]
