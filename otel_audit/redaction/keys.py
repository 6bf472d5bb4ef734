"""Key rules as data: attribute and field names that always mean secret, and the ones never touched.

A key is normalised (lower case, ``-``/``_``/``.``/spaces removed) before matching, so
``X-Api-Key``, ``api_key`` and ``apiKey`` are one name. Dotted attribute keys are also matched on
their last part: ``http.request.header.authorization`` is the header ``authorization``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

#: Normalised names that are secret wherever they appear (exact match) -> (rule name, default action).
SECRET_KEY_NAMES: dict[str, tuple[str, str]] = {
    **{name: ("secret_key", "mask") for name in (
        "password", "passwd", "passwort", "pwd", "pass", "passphrase", "secret", "clientsecret", "token",
        "apikey", "xapikey", "accesskey", "secretkey", "authorization", "proxyauthorization", "auth",
        "authtoken", "xauthtoken", "cookie", "setcookie", "csrf", "csrftoken", "xcsrftoken", "xsrftoken",
        "xxsrftoken", "csrfmiddlewaretoken", "accesstoken", "refreshtoken", "idtoken", "bearertoken",
        "privatekey", "pin", "cvv", "cvc", "cvv2", "otp", "totp", "mfacode", "credentials",
        "credential", "signature", "xamzsignature", "xamzsecuritytoken", "xgoogsignature",
        "awssecretaccesskey", "secretaccesskey", "connectionstring", "dsn", "ssn", "cardnumber", "pan",
        "securitycode", "newpassword", "oldpassword", "currentpassword", "password1", "password2",
        "passwordconfirmation", "confirmpassword",
    )},
    **{name: ("session", "hmac") for name in ("session", "sessionid", "sid", "sessionkey", "jsessionid", "phpsessid")},
}  # fmt: skip

#: Normalised substrings that make a name secret (``db_password``, ``stripe_secret_key``, ``x-auth-token``).
SECRET_KEY_PARTS: tuple[tuple[str, tuple[str, str]], ...] = (
    ("password", ("secret_key", "mask")),
    ("passwd", ("secret_key", "mask")),
    ("passphrase", ("secret_key", "mask")),
    ("secret", ("secret_key", "mask")),
    ("apikey", ("secret_key", "mask")),
    ("token", ("secret_key", "mask")),
    ("privatekey", ("secret_key", "mask")),
    ("credential", ("secret_key", "mask")),
    ("authorization", ("secret_key", "mask")),
    ("cookie", ("secret_key", "mask")),
    ("sessionid", ("session", "hmac")),
    ("sessionkey", ("session", "hmac")),
)

#: Names that contain a secret-looking part but carry no secret.
NOT_SECRET_KEY_NAMES = frozenset({
    "tokentype", "tokenexpiry", "tokenexpiresin", "expiresin", "tokencount", "tokensused", "maxtokens",
    "secretname", "passwordchanged", "passwordexpired", "passwordpolicy", "passwordstrength",
    "cookiepolicy", "sessionchanged", "credentialtype",
})  # fmt: skip

#: Query-string parameter names that are secret only in URLs (``code`` is an OAuth code there,
#: a country code in a JSON body).
URL_PARAM_NAMES = frozenset({"sig", "code", "key", "xamzcredential", "awsaccesskeyid", "xgoogcredential"})

#: The secret names the free-text detectors spell out in their regexes (``detectors.py``), as
#: they are written there: query parameters after ``?``/``&``/``;`` (``signed_url_param``) and
#: header lines (``secret_header``). Each is a secret name by :func:`is_secret_name` (URL
#: parameters in URL context); tests/redaction/test_secret_names.py keeps it so.
URL_SECRET_PARAMS: tuple[str, ...] = (
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "awsaccesskeyid", "signature",
    "sig", "x-goog-signature", "x-goog-credential", "token", "access_token", "refresh_token",
    "id_token", "api_key", "apikey", "key", "password", "passwd", "pwd", "secret", "client_secret",
    "code", "auth",
)  # fmt: skip
SECRET_HEADER_NAMES: tuple[str, ...] = (
    "cookie", "set-cookie", "authorization", "proxy-authorization", "x-api-key", "x-auth-token",
    "x-csrf-token", "x-xsrf-token",
)  # fmt: skip

#: Bookkeeping the pipeline relies on: never redacted, never dropped (not even in allow-list mode).
PROTECTED_ATTRIBUTES: tuple[str, ...] = (
    "audit.event_id", "audit.category", "audit.action", "audit.outcome", "audit.outcome.reason",
    "audit.level", "audit.origin", "audit.rule", "audit.policy.*", "audit.chain.*", "audit.redaction.*",
    "audit.tags", "audit.actor.source", "audit.actor.type", "audit.actor.verified", "audit.incomplete",
    "audit.incomplete.fields", "audit.classification.route", "audit.http.original_action",
    "audit.semantic.*", "ocsf.*",
    # Values the adapters take from the framework's own vocabulary, never from user input:
    "http.request.method", "http.route", "http.response.status_code", "url.scheme",
    "db.system.name", "db.operation.name",
)  # fmt: skip

#: Per-attribute default actions: who/where stay readable for auditors, the session id is a
#: bearer credential and is pseudonymised so records still correlate.
DEFAULT_ATTRIBUTE_ACTIONS: dict[str, str] = {
    "enduser.id": "keep",
    "user.name": "keep",
    "client.address": "keep",
    "server.address": "keep",
    "http.request.header.host": "keep",  # the server's address and port, as server.address
    "network.peer.address": "keep",
    "session.id": "hmac",
}

_NORMALISE = re.compile(r"[-_.\s]")


def normalise(key: str) -> str:
    name = key.lower()
    if name.isalnum():  # nothing to remove (the common case)
        return name
    name = name.replace("-", "").replace("_", "").replace(".", "")
    # Only whitespace is left to remove, and an alphanumeric name has none.
    return name if name.isalnum() else _NORMALISE.sub("", name)


#: Fast "no part can occur" check before the ordered loop over SECRET_KEY_PARTS (whose order
#: decides which rule wins when several parts occur): every part contains one of these pairs of
#: letters, rare in other names (``traceparent``, ``useragent`` have none), and a few ``in``
#: tests cost less than one regex search.
_PART_PAIRS = ("ss", "cr", "ke", "th", "ok")
if not all(any(pair in part for pair in _PART_PAIRS) for part, _ in SECRET_KEY_PARTS):  # pragma: no cover
    _PART_PAIRS = tuple(part for part, _ in SECRET_KEY_PARTS)  # a part was added: test the parts


def builtin_key_rule(key: str) -> tuple[str, str] | None:
    """(rule name, default action) when ``key`` names a secret, else None."""
    name = normalise(key)
    if not name or name in NOT_SECRET_KEY_NAMES:
        return None
    hit = SECRET_KEY_NAMES.get(name)
    if hit is not None:
        return hit
    for pair in _PART_PAIRS:
        if pair in name:
            break
    else:
        return None
    for part, rule in SECRET_KEY_PARTS:
        if part in name:
            return rule
    return None


def is_secret_name(name: str, url: bool = False) -> bool:
    """Whether a field, parameter, header or column name means its value is secret: the one
    secret-name rule (:func:`builtin_key_rule`; with ``url``, also the names secret only in URLs,
    :data:`URL_PARAM_NAMES`). For any layer that must keep values of secret fields out of a
    record (an adapter's model fields, the native scan loop's ``name=`` check)."""
    return builtin_key_rule(name) is not None or (url and normalise(name) in URL_PARAM_NAMES)


@dataclass(frozen=True)
class GlobSet:
    """Case-insensitive glob patterns over attribute keys (``http.request.header.*``)."""

    patterns: tuple[str, ...]

    def __post_init__(self) -> None:
        exact = frozenset(p.lower() for p in self.patterns if not any(c in p for c in "*?["))
        wild = tuple(
            re.compile(fnmatch.translate(p.lower())) for p in self.patterns if any(c in p for c in "*?[")
        )
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_wild", wild)

    def matches(self, key: str) -> bool:
        lowered = key.lower()
        if lowered in self._exact:  # type: ignore[attr-defined]
            return True
        return any(rx.match(lowered) for rx in self._wild)  # type: ignore[attr-defined]


PROTECTED = GlobSet(PROTECTED_ATTRIBUTES)
