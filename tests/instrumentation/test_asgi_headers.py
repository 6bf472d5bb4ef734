"""The ASGI adapter's view of request headers: names lower-cased, a repeated header's values
joined in order into one field (RFC 9110 5.3), whatever iterable the server hands in."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")

from otel_audit.instrumentation.starlette import _AsgiFacts  # noqa: E402


@pytest.mark.parametrize("wrap", [list, tuple, iter], ids=["list", "tuple", "iterator"])
def test_headers_are_lower_cased_and_repeated_ones_joined_in_order(wrap) -> None:
    raw = [(b"Host", b"shop.example"), (b"Accept", b"text/html"), (b"X-Forwarded-For", b"10.0.0.1"),
           (b"accept", b"application/json"), (b"x-forwarded-for", b"10.0.0.2")]
    facts = _AsgiFacts({"type": "http", "headers": wrap(raw)})
    assert facts.headers() == {"host": "shop.example", "accept": "text/html, application/json",
                               "x-forwarded-for": "10.0.0.1, 10.0.0.2"}
    assert facts.header("X-Forwarded-For") == "10.0.0.1, 10.0.0.2"


def test_distinct_headers_come_through_as_sent_and_none_is_empty() -> None:
    facts = _AsgiFacts({"type": "http", "headers": [(b"User-Agent", b"curl/8.5 \xe9"), (b"Authorization", b"Bearer x")]})
    assert facts.headers() == {"user-agent": "curl/8.5 \u00e9", "authorization": "Bearer x"}
    assert _AsgiFacts({"type": "http"}).headers() == {}
