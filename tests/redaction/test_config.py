"""validate_config: every problem names its path inside ``redaction:`` and what was expected; the
policy loader reports it with the file position."""

from __future__ import annotations

import pytest

from otel_audit.errors import OtelAuditError
from otel_audit.redaction import RedactionConfigError, Redactor, validate_config

BAD = [
    ("nope", "redaction: expected a mapping; got 'str'"),
    ({"bogus": 1}, "redaction.bogus: expected a known setting (detectors, custom_detectors, keys, attributes, sql, allow, hmac); got 'bogus'"),
    ({"detectors": {"credit_card": "shred"}}, "redaction.detectors.credit_card: expected one of mask, partial, hmac, drop, off; got 'shred'"),
    ({"detectors": {"creditcard": "mask"}}, "redaction.detectors.creditcard: expected a built-in detector ("),
    ({"custom_detectors": [{"name": "emp", "pattern": "(EMP"}]}, "redaction.custom_detectors[0].pattern: expected a valid regular expression (missing )"),
    ({"custom_detectors": [{"name": "emp", "pattern": "x*"}]}, "redaction.custom_detectors[0].pattern: expected a pattern that does not match the empty string"),
    ({"custom_detectors": [{"name": "Emp ID", "pattern": "x"}]}, "redaction.custom_detectors[0].name: expected a lower-case identifier"),
    ({"custom_detectors": [{"name": "email", "pattern": "x"}]}, "redaction.custom_detectors[0].name: expected a name not already used"),
    ({"custom_detectors": [{"name": "emp", "pattern": "x", "validator": "crc"}]}, "redaction.custom_detectors[0].validator: expected one of luhn, iban,"),
    ({"keys": [{"action": "mask"}]}, "redaction.keys[0].match: expected a key name or glob"),
    ({"keys": [{"match": ["ok", 3]}]}, "redaction.keys[0].match[1]: expected a non-empty string; got 3"),
    ({"attributes": {"enduser.id": "hash"}}, "redaction.attributes.enduser.id: expected one of mask, partial, hmac, drop, keep; got 'hash'"),
    ({"sql": {"raw_text": "yes"}}, "redaction.sql.raw_text: expected true or false; got 'yes'"),
    ({"allow": [{"levels": ["request"]}]}, "redaction.allow[0].attributes: expected the list of attribute names"),
    ({"allow": [{"levels": ["everything"], "attributes": ["a"]}]}, "redaction.allow[0].levels: expected one of metadata, request, full; got 'everything'"),
    ({"hmac": {"missing_key": "panic"}}, "redaction.hmac.missing_key: expected one of ephemeral, mask; got 'panic'"),
]


@pytest.mark.parametrize(("section", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_invalid_sections_name_path_and_expectation(section, message: str) -> None:
    with pytest.raises(RedactionConfigError) as info:
        validate_config(section)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, OtelAuditError)
    with pytest.raises(RedactionConfigError):
        Redactor.from_config(section)


def test_valid_section_and_empty_section() -> None:
    validate_config(None)
    validate_config({})
    validate_config({
        "detectors": {"phone": "hmac", "ipv4": "off", "credit_card": "partial"},
        "custom_detectors": [{"name": "employee_id", "pattern": r"EMP-\d{6}", "validator": "luhn", "action": "drop"}],
        "keys": [{"match": ["x-internal-*", "*_pin"], "action": "mask"}],
        "attributes": {"enduser.id": "hmac", "client.*": "keep"},
        "sql": {"raw_text": True},
        "allow": [{"categories": ["http"], "levels": ["request", "full"], "attributes": ["http.*", "url.path"]}],
        "hmac": {"missing_key": "mask"},
    })


def test_policy_loader_reports_redaction_problems_with_their_path() -> None:
    from otel_audit.policy import load_policy

    with pytest.raises(OtelAuditError) as info:
        load_policy("redaction:\n  detectors: {credit_card: shred}\n")
    assert "redaction.detectors.credit_card: expected one of mask, partial, hmac, drop, off; got 'shred'" in str(info.value)
    assert load_policy("redaction:\n  detectors: {phone: hmac}\n").redaction == {"detectors": {"phone": "hmac"}}
