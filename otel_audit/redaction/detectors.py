"""Value detectors as data: name, what it matches, regex, validator, default action.

A detector fires only when its cheap prefilter passes (a literal that must occur), its regex
finds a candidate and its validator (if any) accepts it: the regex proposes, the validator
decides. ``group`` names the part of the match that is secret (``value``), so
``password=hunter2`` keeps ``password=`` and DSNs keep their user and host.

Every pattern is linear-time on adversarial input: bounded repetitions, no nested unbounded
quantifiers (tests feed 100 KB strings built to trip backtracking).

``docs/redaction.md`` has a table generated from :data:`BUILTIN_DETECTORS`; a test keeps them equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from otel_audit.redaction import validators as v
from otel_audit.redaction.keys import SECRET_HEADER_NAMES, URL_SECRET_PARAMS

@dataclass(frozen=True)
class Detector:
    name: str
    kind: str  # secret | personal | network
    description: str
    pattern: str
    default_action: str  # mask | partial | hmac | drop | off (= disabled unless the policy enables it)
    validator: str | None = None  # a key of validators.VALIDATORS
    prefilter: tuple[str, ...] = ()  # one of these must occur in the text (exact case)
    prefilter_lower: tuple[str, ...] = ()  # ... or in the lower-cased text
    flags: int = 0
    lead: str = ""  # shared first token (``\d``): detectors with the same lead are scanned in one pass
    extend_left: str = ""  # characters the item extends over to the left of the match (e-mail local part)
    gate: Callable[[str], bool] | None = field(default=None, compare=False)  # cheap check before the regex
    #: Cheap check on an ASCII text's shape (see :func:`shape`) that every match needs: ``b"AA00"``
    #: for an IBAN. Skips the regex for most texts without scanning them character by character.
    shape_gate: Callable[[bytes], bool] | None = field(default=None, compare=False)
    #: Where every match starts: ``(literal, offset)`` pairs, the literal occurring ``offset``
    #: characters after the match's start in the text (``anchor_in="text"``), its lower-cased form
    #: (``"lower"``) or its shape (``"shape"``). The engine then tries the regex only there
    #: instead of at every position (the lower-case and shape forms are used for ASCII text only).
    anchors: tuple[tuple[str | bytes, int], ...] = ()
    anchor_in: str = "text"
    #: Every match is a run of at least this many digits, spaces and dashes (a card number): lets
    #: the engine skip to such runs instead of trying the regex at every digit.
    min_run: int = 0
    keyed: bool = False  # the name just before the match must be a secret key name (see keys.py)
    #: Characters every match contains, as a conjunction of alternatives: ``(":=",)`` means a
    #: ``:`` or a ``=``, ``(":", "@")`` a ``:`` and an ``@``. Only the characters of
    #: :data:`NEED_CHARS` count. The engine skips the detector for a text that lacks them.
    needs: tuple[str, ...] = ()
    #: Every match contains a digit (``\d``: in non-ASCII text any Unicode digit).
    needs_digit: bool = False
    #: Every match contains an ASCII capital letter (``A-Z``, matched case-sensitively).
    needs_capital: bool = False
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)
    accept: Callable[[str], int] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", re.compile(self.lead + self.pattern, self.flags))
        object.__setattr__(self, "accept", v.VALIDATORS[self.validator] if self.validator else None)

    @property
    def full_pattern(self) -> str:
        return self.lead + self.pattern


#: ASCII text -> its shape, one byte per character: digits ``0``, ``A-Z`` ``A``, ``a-z`` and ``_``
#: ``a``; space, ``-``, ``.`` and ``:`` stay; everything else ``!``. Positions are kept.
SHAPE_TABLE = bytes(
    ord("0") if 48 <= i <= 57 else ord("A") if 65 <= i <= 90 else ord("a") if 97 <= i <= 122 or i == 95
    else i if chr(i) in " -.:" else ord("!")
    for i in range(256)
)


#: The characters a detector's :attr:`Detector.needs` may name (each is looked for in every text
#: scanned, so the list is short).
NEED_CHARS = "=:@_-./"


_IPV4_SHAPE = re.compile(rb"0\.0{1,3}\.0{1,3}\.0")
_IBAN_SHAPE = re.compile(rb"AA00(?: ?[A0]){11}")

#: The characters other than ``A-Za-z`` that ``[A-Za-z]`` matches case-insensitively (``İ``, ``ı``,
#: ``ſ``, the Kelvin sign). Patterns say ``(?i:...)`` only around their keywords and add these to
#: their letter classes instead: the same matches, but the value is read without a case-folding
#: lookup per character (four times cheaper for a long token).
_CASELESS = "\u0130\u0131\u017f\u212a"

_EMAIL_LOCAL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-"
_PEM_LABEL = r"(?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?"

BUILTIN_DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private_key", "secret", "PEM private-key block (RSA, EC, OPENSSH, PGP, ...), also truncated",
        r"-----BEGIN " + _PEM_LABEL + r"-----(?:[\s\S]{0,16384}?-----END " + _PEM_LABEL + r"-----"
        r"|[A-Za-z0-9+/=\s\\:,-]{0,16384})",
        "mask", prefilter=("PRIVATE KEY",), needs=("-",), needs_capital=True,
    ),
    Detector(
        "jwt", "secret", "JSON Web Token (three base64url segments)",
        r"eyJ(?<!\weyJ)[A-Za-z0-9_-]{6,4096}\.[A-Za-z0-9_-]{2,8192}\.[A-Za-z0-9_-]{0,4096}",
        "mask", validator="jwt", needs=(".",), needs_capital=True,
    ),
    Detector(
        "bearer_token", "secret", "`Bearer`/`Token` credential in a header or text",
        r"\b(?i:bearer|token)\s{1,10}(?P<value>[A-Za-z0-9._~+/=" + _CASELESS + r"-]{12,4096})",
        "mask", validator="bearer_token", prefilter_lower=("bearer", "token "),
        anchors=(("bearer", 0), ("token", 0)), anchor_in="lower",
    ),
    Detector(
        "basic_auth", "secret", "`Basic` credential (base64 of user:password)",
        r"\b(?i:basic)\s{1,10}(?P<value>[A-Za-z0-9+/" + _CASELESS + r"]{4,2048}={0,2})",
        "mask", validator="basic_credentials", prefilter_lower=("basic",), anchors=(("basic", 0),), anchor_in="lower",
    ),
    Detector(
        "aws_access_key", "secret", "AWS access key id (AKIA/ASIA/... + 16)",
        r"A(?<!\wA)(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|ROA|PKA)[A-Z2-7]{16}\b", "mask", needs_capital=True,
    ),
    Detector(
        "aws_secret_key", "secret", "AWS secret access key (40 chars) near an AWS/secret keyword",
        r"(?i:aws|secret)[A-Za-z0-9_." + _CASELESS + r"-]{0,30}[\"']?\s{0,5}[:=]\s{0,5}[\"']?"
        r"(?P<value>[A-Za-z0-9/+" + _CASELESS + r"]{40})(?![A-Za-z0-9/+=" + _CASELESS + r"])",
        "mask", prefilter_lower=("aws", "secret"), anchors=(("aws", 0), ("secret", 0)), anchor_in="lower", needs=(":=",),
    ),
    Detector(
        "github_token", "secret", "GitHub token (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)",
        r"g(?<!\wg)(?:h[pousr]_[A-Za-z0-9]{36,255}|ithub_pat_[A-Za-z0-9_]{22,255})\b", "mask", needs=("_",),
    ),
    Detector(
        "gitlab_token", "secret", "GitLab personal/project access token (glpat-)",
        r"glpat-(?<!\wglpat-)[A-Za-z0-9_-]{20,255}", "mask", needs=("-",),
    ),
    Detector(
        "slack_token", "secret", "Slack token (xoxb-, xoxp-, ...) or incoming-webhook URL",
        r"\bxox[abposr]-[A-Za-z0-9-]{10,255}|hooks\.slack\.com/services/[A-Za-z0-9/_-]{10,255}",
        "mask", prefilter=("xox", "hooks.slack.com"), anchors=(("xox", 0), ("hooks.slack.com", 0)), needs=("-/",),
    ),
    Detector(
        "stripe_key", "secret", "Stripe secret or restricted key (sk_/rk_ live/test)",
        r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,255}\b", "mask", prefilter=("k_live_", "k_test_"),
        anchors=(("k_live_", 1), ("k_test_", 1)), needs=("_",),
    ),
    Detector(
        "google_api_key", "secret", "Google API key (AIza + 35)", r"AIza(?<!\wAIza)[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])",
        "mask", needs_capital=True,
    ),
    Detector(
        "openai_key", "secret", "OpenAI-style key (sk-, sk-proj-, sk-ant-, ...)",
        r"sk-(?<!\wsk-)[A-Za-z0-9_-]{20,255}", "mask", needs=("-",),
    ),
    Detector(
        "url_credentials", "secret", "password in a URL or DSN (`scheme://user:password@host`)",
        # RFC 3986 reads the password up to the last "@" before the host; DSN parsers (SQLAlchemy,
        # JDBC) also let it hold "/", "?" and "#". So: the first "@"-free run (which may hold
        # them), then more "@"-led runs without them while another "@" follows; not a port and
        # path (``host:8080/a@b``).
        r"://[^\s:/?#@\"'<>]{0,256}:(?P<value>(?!\d{1,5}[/?#])[^\s\"'<>@]{1,256}"
        r"(?:@[^\s\"'<>@/?#]{0,256}(?=@)){0,16})@", "mask", needs=(":", "/", "@"),
    ),
    Detector(
        "signed_url_param", "secret",
        "signature/credential query parameter (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, "
        "AWSAccessKeyId, Signature, sig, X-Goog-Signature, token, access_token, api_key, password, code, ...)",
        r"(?i)[?&;](?:" + "|".join(re.escape(p) for p in URL_SECRET_PARAMS) + r")=(?P<value>[^&#\s\"'<>]{1,4096})",
        "mask", prefilter=("=",), needs=("=",),
    ),
    Detector(
        "secret_header", "secret", "credential header line in text (`Cookie: ...`, `Authorization: ...`)",
        r"(?im)^[ \t]{0,8}(?:" + "|".join(SECRET_HEADER_NAMES) + r")[ \t]{0,8}:[ \t]{0,8}(?P<value>[^\r\n]{1,8192})",
        "mask", prefilter_lower=("cookie", "authorization", "x-api-key", "x-auth-token", "x-csrf", "x-xsrf"), needs=(":",),
    ),
    Detector(
        "secret_assignment", "secret",
        "`password=...`, `\"token\": \"...\"`, `db_password: ...` in free text: the name before `=`/`:` "
        "is judged by the key rules",
        r"[:=][ \t]{0,5}(?P<value>\"[^\"\n]{1,512}\"|'[^'\n]{1,512}'|[^\s&,;\"'<>}\]]{1,512})",
        "mask", keyed=True, prefilter=(":", "="), needs=(":=",),
    ),
    Detector(
        "credit_card", "personal", "payment card number (PAN)",
        # Only digits (and "." / "-" before) bound it: a letter or a byte decoded as one (latin-1
        # WSGI paths) does not hide a card glued to it; Luhn and the issuer prefix decide.
        r"(?<![\d.-]\d)(?:[ -]?\d){12,18}(?![\d-])", "mask", validator="luhn", lead=r"\d",
        # 13+ digits with at most one space or dash between them
        shape_gate=lambda shape: b"0000000000000" in shape.translate(None, b" -"), min_run=13, needs_digit=True,
    ),
    Detector(
        "iban", "personal", "International Bank Account Number",
        r"[A-Z](?<![\w][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]){11,30}", "hmac", validator="iban",
        shape_gate=lambda shape: _IBAN_SHAPE.search(shape) is not None, anchors=((b"AA00", 0),), anchor_in="shape", needs_digit=True, needs_capital=True,
    ),
    Detector(
        "us_ssn", "personal", "US Social Security number (AAA-GG-SSSS)",
        r"(?<![\w-]\d)\d\d-\d{2}-\d{4}(?![\w-])", "hmac", validator="us_ssn", lead=r"\d",
        shape_gate=lambda shape: b"000-00-0000" in shape, anchors=((b"000-00-0000", 0),), anchor_in="shape", needs=("-",), needs_digit=True,
    ),
    Detector(
        "email", "personal", "e-mail address",
        r"@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b", "hmac", validator="email", extend_left=_EMAIL_LOCAL, needs=("@", "."),
    ),
    Detector(
        "ipv4", "network", "IPv4 address (outside `client.address`, which is kept)",
        r"(?<![\w.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d)", "hmac", validator="ipv4", lead=r"\d",
        shape_gate=lambda shape: _IPV4_SHAPE.search(shape) is not None,
        anchors=((b"0.", 0), (b"00.", 0), (b"000.", 0)), anchor_in="shape", needs=(".",), needs_digit=True,
    ),
    Detector(
        "ipv6", "network", "IPv6 address",
        r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])", "hmac", validator="ipv6",
        gate=lambda text: "::" in text or text.count(":") >= 7, needs=(":",),
    ),
    Detector(
        "phone", "personal", "phone number (opt-in: enable with an action)",
        r"(?<![\w+])\+?\d{1,3}[ .-]?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}(?!\w)", "off", validator="phone", needs_digit=True,
    ),
)  # fmt: skip

DETECTOR_NAMES = frozenset(d.name for d in BUILTIN_DETECTORS)
#: What must never leave the process in clear: every ``secret`` detector, plus card numbers (PCI
#: DSS). The ``secrets`` redaction of application logs and ``assert_no_secrets`` judge by these.
SECRET_CLASS: tuple[str, ...] = tuple(d.name for d in BUILTIN_DETECTORS if d.kind == "secret") + ("credit_card",)


def custom_detector(name: str, pattern: str, validator: str | None, action: str) -> Detector:
    """A detector from the policy's ``custom_detectors`` (validated by ``validate_config`` first).

    Its regex runs on RE2 (:class:`~otel_audit.redaction.linear.LinearPattern`): a policy's
    pattern is not reviewed like the built-in ones, so its matching time must not depend on it."""
    from otel_audit.redaction.linear import LinearPattern

    detector = Detector(name, "custom", "custom detector from the policy", pattern, action, validator=validator)
    object.__setattr__(detector, "compiled", LinearPattern(pattern))
    return detector
