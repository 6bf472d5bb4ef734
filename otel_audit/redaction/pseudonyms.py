"""Pseudonyms: what the ``hmac`` action writes (``[HMAC:<20 hex digits>]``) and the key it uses.

The key is ``OTEL_AUDIT_HMAC_KEY`` (read through :mod:`otel_audit.config`), or one random key per
process, said once on stderr. No label goes into a pseudonym: the same e-mail as ``enduser.id``,
in a body or in SQL parameters yields the same string, so records join on exact equality.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
import threading
from typing import Any, Mapping

from otel_audit.config import HMAC_KEY_ENV, HMAC_KEY_ID_ENV, usable_hmac_key


class EphemeralKey:
    """One random pseudonym key per process, made on first use and announced once."""

    _key: tuple[bytes, str] | None = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> tuple[bytes, str]:
        """``(key, key id)``."""
        with cls._lock:
            if cls._key is None:
                key = secrets.token_bytes(32)
                key_id = f"ephemeral-{os.getpid()}-{secrets.token_hex(4)}"
                cls._key = (key, key_id)
                print(
                    f"otel-audit: {HMAC_KEY_ENV} is not set; pseudonyms (hmac) use a random key for this process "
                    f"only (key id {key_id}): they correlate within this process, not across restarts. "
                    f"Set {HMAC_KEY_ENV} (and {HMAC_KEY_ID_ENV}) to keep them stable.",
                    file=sys.stderr,
                )
            return cls._key


_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


def hmac_pads(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256 (RFC 2104) as two SHA-256 states, the key's inner and outer pads already
    hashed: ``HMAC(key, m)`` is ``outer.copy()`` updated with the digest of ``inner.copy()``
    updated with ``m``. Four C calls per value instead of :mod:`hmac`'s Python-level copy,
    update and hexdigest (same digest, checked against :func:`hmac.new`)."""
    if len(key) > 64:  # the SHA-256 block size
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


def pseudonym(pads: tuple[Any, Any], value: str) -> str:
    """``[HMAC:<first 20 hex digits>]`` of ``value`` under the key whose :func:`hmac_pads` these are."""
    inner = pads[0].copy()
    inner.update(value.encode("utf-8", "surrogatepass"))
    outer = pads[1].copy()
    outer.update(inner.digest())
    return f"[HMAC:{outer.hexdigest()[:20]}]"


def key_id_for(key: bytes) -> str:
    """A key id derived from the key (not reversible) when ``OTEL_AUDIT_HMAC_KEY_ID`` is unset."""
    return "k-" + hmac.new(key, b"otel-audit key id", hashlib.sha256).hexdigest()[:12]


def pseudonymise(value: str, environ: Mapping[str, str] | None = None) -> str:
    """The ``hmac`` action's pseudonym for one value, outside a redaction pass.

    Same key (``OTEL_AUDIT_HMAC_KEY`` or this process's random key) and format as the redactor's,
    so an attempted username pseudonymised by the policy joins with the same name elsewhere.
    """
    raw = usable_hmac_key(environ)
    key = raw.encode() if raw else EphemeralKey.get()[0]
    return "[HMAC:" + hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:20] + "]"
