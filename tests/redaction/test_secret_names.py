"""One secret-name rule (``redaction/keys.py``): the key rules, the free-text detectors' name
lists and adapters asking about a field name all read it."""

from __future__ import annotations

import re

import pytest

from otel_audit.redaction import Redactor
from otel_audit.redaction.detectors import BUILTIN_DETECTORS
from otel_audit.redaction.keys import SECRET_HEADER_NAMES, URL_SECRET_PARAMS, builtin_key_rule, is_secret_name

DETECTORS = {d.name: d for d in BUILTIN_DETECTORS}


@pytest.mark.parametrize("name", URL_SECRET_PARAMS)
def test_every_signed_url_parameter_is_a_secret_name_in_urls(name: str) -> None:
    assert is_secret_name(name, url=True), name
    assert re.escape(name) in DETECTORS["signed_url_param"].pattern


@pytest.mark.parametrize("name", SECRET_HEADER_NAMES)
def test_every_secret_header_is_a_secret_name(name: str) -> None:
    assert is_secret_name(name), name
    assert name in DETECTORS["secret_header"].pattern


@pytest.mark.parametrize(
    "name, secret",
    [
        ("password", True), ("Password", True), ("db_password", True), ("api_key", True), ("apiKey", True),
        ("secret_token", True), ("otp", True), ("totp", True), ("pin", True), ("session_key", True),
        ("username", False), ("email", False), ("is_staff", False), ("last_login", False),
        ("token_type", False), ("password_changed", False), ("code", False), ("", False),
    ],
)
def test_is_secret_name_is_the_key_rule(name: str, secret: bool) -> None:
    """What an adapter asks of a field name (Django: values of secret fields stay out of
    ``audit.changes``) is exactly what the key rules mask."""
    assert is_secret_name(name) is secret
    assert is_secret_name(name) is (builtin_key_rule(name) is not None)
    masked = Redactor.from_config(None, environ={}).redact_attributes({"app.field": {name: "s3cr3t-value-x"}})
    assert (masked["app.field"][name] != "s3cr3t-value-x") is secret


def test_url_only_names_are_secret_in_urls_only() -> None:
    for name in ("code", "sig", "key", "AWSAccessKeyId"):
        assert is_secret_name(name, url=True) and not is_secret_name(name), name
