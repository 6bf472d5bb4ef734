"""Property tests: valid secrets placed anywhere never survive, under every action; look-alikes stay."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_audit.redaction import Redactor
from tests.redaction import strategies as gen

KEY_ENV = {"OTEL_AUDIT_HMAC_KEY": "property-test-key-0123456789"}
ACTIONS = ["mask", "partial", "hmac", "drop"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def redactor_with(detector: str, action: str) -> Redactor:
    return Redactor.from_config({"detectors": {detector: action}}, environ=KEY_ENV)


def dumped(result) -> str:
    return json.dumps({"a": result.attributes, "b": result.body}, default=str, ensure_ascii=False)


def assert_gone(secret: str, output: str) -> None:
    assert secret not in output
    assert quote_plus(secret) not in output
    assert json.dumps(secret)[1:-1] not in output


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("kind", sorted(gen.SECRET_KINDS))
def test_valid_secrets_never_survive(kind: str, action: str) -> None:
    redactor = redactor_with(kind, action)

    @SETTINGS
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        secret = data.draw(gen.SECRET_KINDS[kind]())
        attrs = data.draw(gen.placed(secret))
        result = redactor.redact(attrs, f"user did it with {secret}", category="http", level="request")
        output = dumped(result)
        if kind == "private_key":
            body_lines = [line for line in secret.splitlines()[1:-1] if len(line) >= 16]
            for line in body_lines:
                assert_gone(line, output)
        else:
            assert_gone(secret, output)
        assert result.count >= 1
        assert result.attributes["audit.event_id"] == "e1"  # bookkeeping untouched

    check()


@pytest.mark.parametrize("action", ACTIONS)
def test_url_credentials_never_survive(action: str) -> None:
    redactor = redactor_with("url_credentials", action)

    @SETTINGS
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        url, password = data.draw(gen.url_passwords())
        attrs = data.draw(gen.placed(url))
        output = dumped(redactor.redact(attrs, url))
        assert_gone(password, output)

    check()


@SETTINGS
@given(secret=gen.card_numbers() | gen.ibans() | gen.jwts() | gen.aws_access_keys | gen.emails(), key=gen.NEUTRAL_KEYS)
def test_secret_in_header_and_body_never_survives_default_policy(secret: str, key: str) -> None:
    redactor = Redactor.from_config(None, environ=KEY_ENV)
    attrs = {
        f"http.request.header.x-{key}": [secret],
        "http.request.header.authorization": [f"Bearer {secret}"],
        "audit.request.body": {"outer": [{key: secret}]},
        "url.query": f"q=1&{key}={quote_plus(secret)}",
    }
    output = dumped(redactor.redact(attrs, secret))
    assert_gone(secret, output)


@SETTINGS
@given(number=gen.luhn_invalid_numbers(), uuid=gen.uuids, key=gen.NEUTRAL_KEYS)
def test_luhn_invalid_numbers_and_uuids_are_left_alone(number: str, uuid: str, key: str) -> None:
    redactor = Redactor.from_config(None, environ=KEY_ENV)
    attrs = {"audit.request.body": {key: number, "ref": uuid, "text": f"order {number} trace {uuid}"}}
    result = redactor.redact(attrs, f"order {number} for {uuid}")
    assert result.attributes == attrs
    assert result.body == f"order {number} for {uuid}"
    assert result.count == 0


@pytest.mark.parametrize("action", ACTIONS)
def test_a_record_redacted_twice_stays_as_it_was_after_once(action: str) -> None:
    """The redactor's own markers are not redacted again (``password=[REDACTED:x]`` used to
    become ``password=[REDACTED:secret_assignment]]``), so a record that passes two redactors
    (the all-logs processor and the pipeline, or a replay) reads the same."""
    redactor = Redactor.from_config(
        {"detectors": {"credit_card": action, "iban": action, "email": action, "jwt": action, "phone": action}}, environ=KEY_ENV
    )

    @SETTINGS
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(sorted(gen.SECRET_KINDS)))
        secret = data.draw(gen.SECRET_KINDS[kind]())
        attrs = data.draw(gen.placed(secret))
        attrs["app.config"] = f"password={secret} session=abc123def456 db=postgres://app:{secret[:12]}@db.internal/x"
        once = redactor.redact(attrs, f"user did it with {secret}", category="http", level="request")
        twice = redactor.redact(once.attributes, once.body, category="http", level="request")
        assert (twice.attributes, twice.body) == (once.attributes, once.body)

    check()
