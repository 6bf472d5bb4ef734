"""Validators run on regex candidates only, so a pattern can stay loose and the check stays exact.

Each validator takes the candidate text and returns how many leading characters of it are the
real item (``0`` = not a match). Most return ``len(text)`` or ``0``; IBAN trims a candidate that
ran into the next word. Validators never raise.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from typing import Callable

Validator = Callable[[str], int]


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) checksum every payment card number carries."""
    if digits.isascii() and digits.isdigit():  # the common case, summed in C: ord("0") is 48
        data = digits.encode("ascii")
        return (sum(data[-1::-2]) + sum(data[-2::-2].translate(_DOUBLED_BYTES)) - 48 * len(data)) % 10 == 0
    total = 0
    double = False
    for char in reversed(digits):
        value = ord(char) - 48
        if double:
            value = _DOUBLED[value] if 0 <= value <= 9 else value * 2 - 9 if value * 2 > 9 else value * 2
        total += value
        double = not double
    return total % 10 == 0


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
#: ASCII digit -> the digit of its double's digit sum (``7`` -> ``5``: 14 -> 1 + 4).
_DOUBLED_BYTES = bytes.maketrans(b"0123456789", b"0246813579")


def _card_prefix_ok(digits: str) -> bool:
    """Issuer identification number ranges of the major schemes (ISO/IEC 7812)."""
    length = len(digits)
    first = digits[0]
    two = int(digits[:2])
    four = int(digits[:4])
    six = int(digits[:6])
    if first == "4":  # Visa
        return length in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return length == 16
    if two in (34, 37):  # American Express
        return length == 15
    if two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:  # Diners
        return 14 <= length <= 19
    if four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649 or 622126 <= six <= 622925:  # Discover
        return 16 <= length <= 19
    if 3528 <= four <= 3589:  # JCB
        return 16 <= length <= 19
    if two == 62:  # UnionPay
        return 16 <= length <= 19
    if two in (50, 56, 57, 58) or first == "6":  # Maestro
        return 12 <= length <= 19
    return False


def _whole_card(text: str) -> bool:
    if text.isdigit():  # no separators (the common case)
        digits = text
    else:
        # One separator kind, spaces or dashes (the usual ones): removed in C.
        if " " in text:
            digits = text.replace(" ", "") if "-" not in text else text
        else:
            digits = text.replace("-", "")
        if not digits.isdigit():
            digits = "".join(c for c in text if c.isdigit())
            separators = {c for c in text if not c.isdigit()}
            if len(separators) > 1:  # "4111 1111-1111 1111" is not how anyone writes a card
                return False
    if not 13 <= len(digits) <= 19:
        return False
    return _card_prefix_ok(digits) and luhn_ok(digits)


#: First digits no issuer range starts with (see :func:`_card_prefix_ok`).
_NO_ISSUER = frozenset("01789")


def payment_card(text: str) -> int:
    """The whole candidate, or its longest prefix ending at a separator (``<card> 2024``)."""
    if text[:1] in _NO_ISSUER and text.isascii():  # every prefix starts with it: no issuer range
        return 0
    if _whole_card(text):
        return len(text)
    for end in range(len(text) - 1, 12, -1):
        if text[end] in " -" and _whole_card(text[:end]):
            return end
    return 0


#: ISO 13616 IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_mod97_ok(compact: str) -> bool:
    rearranged = compact[4:] + compact[:4]
    remainder = 0
    for char in rearranged:
        value = _BASE36.get(char)
        if value is None:
            value = int(char, 36)  # A=10 .. Z=35 (other characters: as int() reads them, or ValueError)
        remainder = (remainder * (100 if value > 9 else 10) + value) % 97
    return remainder == 1


_BASE36 = {char: int(char, 36) for char in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}


def iban(text: str) -> int:
    """Country length from the registry, then ISO 13616 mod-97; trims a candidate that ran on."""
    expected = IBAN_LENGTHS.get(text[:2])
    if expected is None:
        return 0
    if " " not in text:  # compact form: the first ``expected`` characters
        if len(text) < expected:
            return 0
        taken = expected
        value = text[:expected]
    else:  # grouped: the first ``expected`` characters that are not spaces
        taken = 0
        compact = []
        count = 0
        for index, char in enumerate(text):
            if char == " ":
                continue
            compact.append(char)
            count += 1
            if count == expected:
                taken = index + 1
                break
        if not taken:
            return 0
        value = "".join(compact)
    if taken < len(text) and text[taken] != " ":  # ran into a longer token: not an IBAN
        return 0
    if not value[2:4].isdigit():
        return 0
    return taken if iban_mod97_ok(value) else 0


def us_ssn(text: str) -> int:
    """Area 000, 666 and 900-999, group 00 and serial 0000 are never issued."""
    area, group, serial = text[:3], text[4:6], text[7:11]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return 0
    return len(text)


def _b64url_json(segment: str) -> object:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def jwt(text: str) -> int:
    """The header segment must decode to a JSON object with ``alg`` (or ``typ``/``enc``)."""
    try:
        header = _b64url_json(text.split(".", 1)[0])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return 0
    if isinstance(header, dict) and ("alg" in header or "typ" in header or "enc" in header):
        return len(text)
    return 0


def basic_credentials(text: str) -> int:
    """``Basic <base64(user:password)>``: the token decodes to printable text with a colon."""
    token = text.split()[-1]
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return 0
    return len(text) if ":" in decoded and decoded.isprintable() else 0


def bearer_token(text: str) -> int:
    """A bearer token has a digit or a token punctuation mark: "Bearer authentication" is prose."""
    token = text.split()[-1]
    if token.isascii():  # one regex search instead of a Python loop over the characters
        return len(text) if _TOKEN_MARK.search(token) is not None else 0
    if any(c.isdigit() or c in "._-+/=~" for c in token):
        return len(text)
    return 0


#: What :func:`bearer_token` looks for, in ASCII (where ``isdigit`` means ``0-9``).
_TOKEN_MARK = re.compile(r"[0-9._\-+/=~]")


def ipv4(text: str) -> int:
    """Four octets 0-255 without leading zeros, and not ``N.0.0.0``: that names a whole network,
    not a host, so it identifies no one, and it is how every Chromium browser has spelled its
    version since the user-agent reduction (``Chrome/120.0.0.0``, ``Edg/``, ``OPR/``)."""
    parts = text.split(".")
    if len(parts) != 4 or parts[1:] == ["0", "0", "0"]:
        return 0
    for part in parts:
        if not part.isdigit() or int(part) > 255 or (len(part) > 1 and part[0] == "0"):
            return 0
    return len(text)


def ipv6(text: str) -> int:
    if text.count(":") < 2:
        return 0
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return 0
    return len(text)


def phone(text: str) -> int:
    digits = sum(c.isdigit() for c in text)
    return len(text) if 9 <= digits <= 15 else 0


_FILE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "js", "css", "map", "ico", "woff", "woff2"})


def email(text: str) -> int:
    """Rejects ``logo@2x.png``-style asset names that share the shape."""
    tld = text.rsplit(".", 1)[-1].lower()
    return 0 if tld in _FILE_SUFFIXES else len(text)


#: Built-in validators by name: what a custom detector in the policy may reference.
VALIDATORS: dict[str, Validator] = {
    "luhn": payment_card,
    "iban": iban,
    "us_ssn": us_ssn,
    "jwt": jwt,
    "basic_credentials": basic_credentials,
    "bearer_token": bearer_token,
    "ipv4": ipv4,
    "ipv6": ipv6,
    "phone": phone,
    "email": email,
}

#: What each validator checks, for docs/redaction.md.
VALIDATOR_DOCS: dict[str, str] = {
    "luhn": "13-19 digits, one separator kind, issuer (IIN) prefix and length, Luhn checksum",
    "iban": "country code with its registry length, ISO 13616 mod-97 check digits",
    "us_ssn": "area not 000/666/9xx, group not 00, serial not 0000",
    "jwt": "header segment base64url-decodes to a JSON object with alg/typ/enc",
    "basic_credentials": "token base64-decodes to printable `user:password`",
    "bearer_token": "token has a digit or token punctuation (not prose)",
    "ipv4": "four octets 0-255, no leading zeros, not `N.0.0.0` (a network, and the Chromium user-agent version)",
    "ipv6": "parses as an IPv6 address",
    "phone": "9-15 digits",
    "email": "top-level domain is not an asset suffix (png, js, ...)",
}
