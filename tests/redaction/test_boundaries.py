"""The smaller redaction gaps of issue 17: URL passwords read by RFC 3986 (up to the last ``@``
before the host, ``/``, ``?`` and ``#`` included) and masked whole; card numbers glued to a
letter or to bytes decoded as one; JSON nested far deeper than the walk goes. Each is checked on
both scan loops (native and Python) where the text is ASCII."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_audit.redaction import Redactor, walk
from otel_audit.redaction.scan_plan import ScanPlan
from otel_audit.redaction.walk import _Pass
from tests.redaction.strategies import card_numbers

KEY_ENV = {"OTEL_AUDIT_HMAC_KEY": "boundaries-test-key-0123456789"}


def _both_ways(text: str, policy=None) -> str:
    """The redacted text; where the native loop is built, it and the Python loop must agree."""
    redactor = Redactor.from_config(policy, environ=KEY_ENV)
    python = redactor._scan_uncached(text, _Pass(), ScanPlan(redactor._plan.entries))
    if redactor._plan.native is not None:
        assert redactor._scan_uncached(text, _Pass(), redactor._plan) == python, text
    return python


@pytest.mark.parametrize(
    ("text", "password"),
    [
        ("dsn postgres://app:pa/ss1word@db.internal:5432/app", "pa/ss1word"),
        ("dsn postgres://app:pa#ss1word@db.internal/app", "pa#ss1word"),
        ("dsn postgres://app:pa?ss1word@db.internal/app", "pa?ss1word"),
        ("dsn mysql://app:p/a@ss:w0rd@db.internal/app", "p/a@ss:w0rd"),
        ("dsn redis://:s3cr/et@cache:6379/0", "s3cr/et"),
        ("dsn postgres://app:Sup3rS3cret@db:5432/prod", "Sup3rS3cret"),
    ],
)
def test_url_passwords_are_masked_whole(text: str, password: str) -> None:
    redacted = _both_ways(text)
    assert "[REDACTED:url_credentials]" in redacted, redacted
    for part in {password, *password.replace("#", "/").replace("?", "/").replace("@", "/").split("/")}:
        assert len(part) < 3 or part not in redacted, (part, redacted)
    assert "[HMAC:" not in redacted  # never pseudonymised: a password is masked


@pytest.mark.parametrize(
    "text",
    [
        "https://u:pw@host.example/path?email=alice@example.com",  # "@" in the query is not the userinfo's
        "https://host.example:8080/users/bob@example.com",  # a port and a path, not a password
    ],
)
def test_url_userinfo_ends_where_the_authority_does(text: str) -> None:
    redacted = _both_ways(text, {"detectors": {"email": "off"}})
    assert "host.example" in redacted and "example.com" in redacted, redacted


@given(card=card_numbers(), glue=st.sampled_from(["x", "Z", "_", "\u00ff", "\u00e9", "\udcff", "\ufffd"]))
def test_cards_glued_to_letters_or_odd_bytes_are_found(card: str, glue: str) -> None:
    """Luhn and the issuer prefix decide: a letter (or a byte that a latin-1 WSGI path or
    surrogateescape turned into one) before or after the digits does not hide them."""
    digits = card.replace(" ", "").replace("-", "")
    for text in (f"/items/{glue}{digits}", f"/items/{digits}{glue}/x", f"/{glue}{card}{glue}"):
        redacted = _both_ways(text)
        assert digits not in redacted.replace(" ", "").replace("-", ""), (text, redacted)
        assert "[REDACTED:credit_card]" in redacted


@pytest.mark.parametrize(
    "text",
    ["request_id = 1172ebe1-bf36-3422-8970-99779507a423", "job 34a2765c62ab57533654198052b7e380 done",
     "trace c0ffee4111111111111111deadbeef"],
)  # fmt: skip
def test_hex_ids_glued_to_card_like_digits_are_not_cards(text: str) -> None:
    """UUIDs, hashes and trace ids hold Luhn-valid runs after a hex letter: a token of 20+ hex
    characters is an id, not a card glued to a letter."""
    assert _both_ways(text) == text


def test_a_card_glued_to_a_hex_letter_in_a_short_token_is_still_a_card() -> None:
    assert _both_ways("ref a4111111111111111 end") == "ref a[REDACTED:credit_card] end"


def test_digits_longer_than_a_card_stay_one_number() -> None:
    assert _both_ways("id 34111111111111111 and v1.4111111111111111") == "id 34111111111111111 and v1.4111111111111111"


def _nested(depth: int, leaf: dict) -> dict:
    value: dict = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [40, 10_000])
def test_deep_json_is_capped_with_a_summary_and_nothing_leaks(depth: int) -> None:
    """The walk stops at 32 levels (``[REDACTED:too_deep]``), as an object or as JSON text, so a
    hostile body cannot exhaust the stack, and what lies deeper is not passed through."""
    redactor = Redactor.from_config(None, environ=KEY_ENV)
    leaf = {"note": "card 4111 1111 1111 1111", "password": "hunter2"}
    text = "{" + '"a":{' * depth + '"note":"card 4111 1111 1111 1111","password":"hunter2"' + "}" * (depth + 1)
    result = redactor.redact({"audit.request.body": _nested(depth, leaf), "body": text}, audit_record=False)
    assert walk.MAX_DEPTH == 32
    dumped = json.dumps(result.attributes, default=str)
    assert "hunter2" not in dumped and "4111 1111 1111 1111" not in dumped
    assert "[REDACTED:too_deep]" in json.dumps(result.attributes["audit.request.body"])
    assert "audit.request.body" in result.fields and "body" in result.fields
