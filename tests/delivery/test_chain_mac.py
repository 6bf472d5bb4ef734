"""The chain MAC is HMAC-SHA256 exactly (keys of every length), and SHA-256 without a key, so any
standard HMAC implementation can check an exported record."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from otel_audit.delivery.chain import ChainKey


@pytest.mark.parametrize("key_length", [1, 31, 32, 63, 64, 65, 200])
@pytest.mark.parametrize("more", [b"", b'\n[7,"abc",null,null]'])
def test_the_mac_is_the_standard_hmac_sha256(key_length, more) -> None:
    secret = bytes((i * 37 + 11) % 256 for i in range(key_length))
    data = b'["otel-audit/chain/1","audit.http.request",1]' * 20
    key = ChainKey("k1", secret)
    assert key.mac(data, more) == hmac.new(secret, data + more, hashlib.sha256).hexdigest()
    assert key.mac(data, more) == key.mac(data, more)  # the pads are copied, never consumed


def test_without_a_key_it_is_sha256() -> None:
    assert ChainKey.from_config(None, None).mac(b"abc", b"def") == hashlib.sha256(b"abcdef").hexdigest()
