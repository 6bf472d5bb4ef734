"""Hypothesis strategies: valid secrets (cards with Luhn, IBANs with mod-97, JWTs, ...), harmless
look-alikes, and placements of a secret anywhere in a record (nested, JSON, form, header, text)."""

from __future__ import annotations

import base64
import json
import string
from typing import Any, Callable

from hypothesis import strategies as st

from otel_audit.redaction.validators import IBAN_LENGTHS, luhn_ok


def luhn_complete(partial: str) -> str:
    for check in "0123456789":
        if luhn_ok(partial + check):
            return partial + check
    raise AssertionError("unreachable")


CARD_PREFIXES = [("4", 16), ("4", 13), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16), ("3530", 16)]


@st.composite
def card_numbers(draw: Any) -> str:
    prefix, length = draw(st.sampled_from(CARD_PREFIXES))
    body = draw(st.text("0123456789", min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1))
    number = luhn_complete(prefix + body)
    style = draw(st.sampled_from(["plain", "space", "dash"]))
    if style == "plain" or length != 16:
        return number
    sep = " " if style == "space" else "-"
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


@st.composite
def luhn_invalid_numbers(draw: Any) -> str:
    prefix, length = draw(st.sampled_from(CARD_PREFIXES))
    body = draw(st.text("0123456789", min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1))
    valid = luhn_complete(prefix + body)
    wrong = str((int(valid[-1]) + draw(st.integers(1, 9))) % 10)
    return valid[:-1] + wrong


def iban_check(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{98 - number % 97:02d}"


@st.composite
def ibans(draw: Any) -> str:
    country = draw(st.sampled_from(["DE", "GB", "FR", "NL", "ES", "IT", "CH", "BE", "NO", "PL"]))
    length = IBAN_LENGTHS[country]
    bban = draw(st.text(string.digits + string.ascii_uppercase, min_size=length - 4, max_size=length - 4))
    value = country + iban_check(country, bban) + bban
    if draw(st.booleans()):
        value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def jwts(draw: Any) -> str:
    header = {"alg": draw(st.sampled_from(["HS256", "RS256", "ES256", "none"])), "typ": "JWT"}
    claims = draw(st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=6), st.integers() | st.text(max_size=10), max_size=4))
    claims["sub"] = draw(st.text(string.ascii_letters + string.digits, min_size=1, max_size=12))
    signature = draw(st.binary(min_size=32, max_size=64))
    return ".".join([_b64url(json.dumps(header).encode()), _b64url(json.dumps(claims).encode()), _b64url(signature)])


aws_access_keys = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["AKIA", "ASIA"]),
    st.text(string.ascii_uppercase + "234567", min_size=16, max_size=16),
)


@st.composite
def private_keys(draw: Any) -> str:
    label = draw(st.sampled_from(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"]))
    body = base64.b64encode(draw(st.binary(min_size=48, max_size=300))).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----"


@st.composite
def emails(draw: Any) -> str:
    local = draw(st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12))
    local += draw(st.sampled_from(["", ".x", "+tag", "_y"]))
    domain = draw(st.text(string.ascii_lowercase, min_size=2, max_size=10))
    tld = draw(st.sampled_from(["com", "org", "de", "io", "co.uk", "example"]))
    return f"{local}@{domain}.{tld}"


@st.composite
def url_passwords(draw: Any) -> tuple[str, str]:
    """(URL with credentials, the password in it)."""
    password = draw(st.text(string.ascii_letters + string.digits + "!$*", min_size=8, max_size=20))
    scheme = draw(st.sampled_from(["postgres", "mysql", "redis", "https", "amqp", "mongodb+srv"]))
    user = draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))
    host = draw(st.sampled_from(["db.internal", "10.1.2.3", "localhost:5432", "cache"]))
    if password in f"{scheme}://{user}@{host}/app order id the paid 2024-01-15 note (ref) done.":
        password = "Pw" + password  # the password must be distinguishable from the rest of the URL
    return f"{scheme}://{user}:{password}@{host}/app", password


uuids = st.uuids().map(str)

FILLER = st.sampled_from(["order", "id", "the", "user", "paid", "ok", "42", "2024-01-15", "note:", "(ref)", "done."])
NEUTRAL_KEYS = st.sampled_from(["note", "data", "items", "value", "x", "details", "payload", "comment"])


@st.composite
def in_text(draw: Any, secret: str) -> str:
    before = draw(st.lists(FILLER, max_size=3))
    after = draw(st.lists(FILLER, max_size=3))
    sep = draw(st.sampled_from([" ", ", ", ": ", "\n", " (", "="]))
    return " ".join(before) + (sep if before else "") + secret + (" " if after else "") + " ".join(after)


@st.composite
def placed(draw: Any, secret: str) -> dict[str, Any]:
    """Record attributes with ``secret`` somewhere: nested structure, JSON string, form body, header, text."""
    text = draw(in_text(secret))
    how = draw(st.sampled_from(["nested", "json", "form", "header", "text", "list", "message"]))
    attrs: dict[str, Any] = {"audit.event_id": "e1", "audit.category": "http", "http.request.method": "POST"}
    key = draw(NEUTRAL_KEYS)
    if how == "nested":
        depth = draw(st.integers(0, 5))
        value: Any = {key: text}
        for _ in range(depth):
            value = draw(st.sampled_from([lambda v: {"inner": v}, lambda v: [1, v, "x"], lambda v: {"list": [v]}]))(value)
        attrs["audit.request.body"] = value
    elif how == "json":
        attrs["audit.request.body"] = json.dumps({"a": 1, key: {"deep": [text]}})
    elif how == "form":
        from urllib.parse import quote_plus

        attrs["audit.request.body"] = f"a=1&{key}={quote_plus(text)}&b=2"
    elif how == "header":
        attrs[f"http.request.header.x-{key}"] = [text]
    elif how == "list":
        attrs["app.labels"] = ["a", text, "b"]  # audit.tags is policy-authored and protected
    elif how == "message":
        attrs["exception.message"] = text
    else:
        attrs[f"app.{key}"] = text
    return attrs


SECRET_KINDS: dict[str, Callable[[], Any]] = {
    "credit_card": card_numbers,
    "iban": ibans,
    "jwt": jwts,
    "aws_access_key": lambda: aws_access_keys,
    "private_key": private_keys,
    "email": emails,
}
