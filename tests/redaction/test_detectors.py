"""Each built-in detector: what it must find, and the harmless look-alikes it must leave alone."""

from __future__ import annotations

import pytest

from otel_audit.redaction import BUILTIN_DETECTORS, Redactor
from otel_audit.redaction import validators as v

KEY_ENV = {"OTEL_AUDIT_HMAC_KEY": "detector-test-key-0123456789"}
ALL_ON = {"detectors": {"phone": "mask"}}


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor.from_config(ALL_ON, environ=KEY_ENV)


FOUND = [
    ("private_key", "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nqwerty==\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA7"),
    ("private_key", "truncated -----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU"),
    ("jwt", "t=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"),
    ("bearer_token", "Authorization: Bearer 9f8e7d6c5b4a39281706abcd", "9f8e7d6c5b4a39281706abcd"),
    ("basic_auth", "Authorization: Basic YWxpY2U6czNjcjN0", "YWxpY2U6czNjcjN0"),
    ("aws_access_key", "id AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_key", 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("aws_secret_key", "SecretAccessKey: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("github_token", "token ghp_" + "A1b2" * 9 + " pushed", "ghp_" + "A1b2" * 9),
    ("gitlab_token", "glpat-Ab3dEf6hIj9kLm2nOp5q", "glpat-Ab3dEf6hIj9kLm2nOp5q"),
    ("slack_token", "xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
    ("slack_token", "POST https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX", "T000/B000/XXXXXXXXXXXX"),
    ("stripe_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
    ("google_api_key", "key AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY ok", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"),
    ("openai_key", "sk-proj-abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz012345"),
    ("url_credentials", "dsn postgresql://app:Sup3rS3cret@db:5432/prod", "Sup3rS3cret"),
    ("signed_url_param", "GET https://b.s3.amazonaws.com/o?X-Amz-Credential=AK%2F2024&X-Amz-Signature=f00dfeedbeef1234 done", "f00dfeedbeef1234"),
    ("signed_url_param", "https://x.example/cb?state=1&code=SplxlOBeZQQYbYS6WxSbIA", "SplxlOBeZQQYbYS6WxSbIA"),
    ("secret_header", "GET / HTTP/1.1\nHost: x\nCookie: sid=c00k1e-value; theme=dark\nAccept: */*", "c00k1e-value"),
    ("secret_assignment", "login failed password=hunter2! for bob", "hunter2!"),
    ("secret_assignment", 'payload {"client_secret": "s3cr3t-v@lue"}', "s3cr3t-v@lue"),
    ("credit_card", "paid with 4111 1111 1111 1111 today", "4111 1111 1111 1111"),
    ("credit_card", "amex 378282246310005.", "378282246310005"),
    ("credit_card", "qty 12 5555555555554444 2024", "5555555555554444"),
    ("iban", "to GB82 WEST 1234 5698 7654 32 thanks", "WEST 1234 5698"),
    ("iban", "iban=DE89370400440532013000", "DE89370400440532013000"),
    ("us_ssn", "ssn 078-05-1120 on file", "078-05-1120"),
    ("email", "mail Bob.Smith+x@Example.co.uk now", "Bob.Smith+x@Example.co.uk"),
    ("ipv4", "from 203.0.113.7 via proxy", "203.0.113.7"),
    ("ipv6", "from 2001:db8::8a2e:370:7334 today", "2001:db8::8a2e:370:7334"),
    ("phone", "call +44 20 7946 0958 back", "7946 0958"),
]


@pytest.mark.parametrize(("name", "text", "secret"), FOUND, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(FOUND)])
def test_detector_finds(redactor: Redactor, name: str, text: str, secret: str) -> None:
    cleaned = redactor.redact_text(text)
    assert secret not in cleaned
    assert "[REDACTED:" in cleaned or "[HMAC:" in cleaned


LOOK_ALIKES = [
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "uuid 123e4567-e89b-12d3-a456-426614174000 and 12345678-1234-1234-1234-123456789012",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "at 2024-01-15T10:30:00.123Z epoch 1705314600123 ns 1705314600123456789",
    "order 4111111111111112 (Luhn-invalid) and 1234567812345678",
    "isbn 978-3-16-148410-0 and 9780306406157",
    "order ORD-2024-000123, invoice INV-77812, sku 00012345678905",
    "version 3.11.7 built 12:30:45 on port 8080",
    "ssn-like 000-12-3456 666-12-3456 900-12-3456 123-00-4567",
    "asset logo@2x.png and icon@3x.webp",
    "Bearer authentication failed; token expired",
    "DE00 invalid iban DE89370400440532013001",
    "the basic plan; a secret santa",
    "mac aa:bb:cc:dd:ee:ff and time 10:20:30",
    # Every Chromium browser's reduced user agent: the version is not an address.
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_left_alone(text: str) -> None:
    redactor = Redactor.from_config(None, environ=KEY_ENV)
    assert redactor.redact_text(text) == text


def test_every_detector_has_a_test_case() -> None:
    assert {d.name for d in BUILTIN_DETECTORS} == {name for name, _, _ in FOUND}


def test_validators() -> None:
    assert v.payment_card("4111111111111111") == 16
    assert v.payment_card("4111111111111112") == 0
    assert v.payment_card("4111 1111-1111 1111") == 0  # mixed separators
    assert v.payment_card("4111 1111 1111 1111 2") == len("4111 1111 1111 1111")
    assert v.iban("GB82WEST12345698765432") == 22
    assert v.iban("GB82WEST12345698765433") == 0
    assert v.iban("GB82 WEST 1234 5698 7654 32 AB") == len("GB82 WEST 1234 5698 7654 32")
    assert v.iban("XX82WEST12345698765432") == 0
    assert v.us_ssn("078-05-1120") and not v.us_ssn("666-05-1120") and not v.us_ssn("912-05-1120")
    assert v.jwt("eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.") and not v.jwt("eyJub3QganNvbg.eyJ4IjoxfQ.")
    assert v.ipv4("10.0.0.1") and not v.ipv4("10.0.0.256") and not v.ipv4("1.02.3.4")
    assert v.ipv4("10.1.0.0") and v.ipv4("192.168.0.0") and not v.ipv4("120.0.0.0") and not v.ipv4("10.0.0.0")
    assert v.ipv6("::1") and not v.ipv6("12:30:45")
