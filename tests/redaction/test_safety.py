"""The redactor never raises and stays fast on hostile input: bytes, huge strings, deep nesting,
cycles, odd types, and 100 KB strings built to trip regex backtracking."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_audit.errors import containment
from otel_audit.redaction import Redactor
from otel_audit.redaction.walk import MAX_SCAN_LENGTH

ENV = {"OTEL_AUDIT_HMAC_KEY": "safety-test-key-0123456789abcdef"}
REDACTOR = Redactor.from_config({"detectors": {"phone": "mask"}}, environ=ENV)

N = 100 * 1024
ADVERSARIAL = {
    "digits": "1" * N,
    "spaced_digits": "1 " * (N // 2),
    "dashed_digits": "4-" * (N // 2),
    "at_signs": "a" * (N - 1) + "@",
    "dots": "a." * (N // 2),
    "email_like": ("a@b." * (N // 4)),
    "colons": ":" * N,
    "hex_colons": "ab:" * (N // 3),
    "ip_like": "1.1.1." * (N // 6),
    "pem_no_end": "-----BEGIN RSA PRIVATE KEY-----" + "A" * N,
    "many_pem_begins": "-----BEGIN PRIVATE KEY-----\n" * (N // 28),
    "jwt_like": "eyJ" + "a" * N + ".",
    "jwt_many": "eyJaaaaaaaa." * (N // 12),
    "bearer_spam": "Bearer " * (N // 7),
    "assignments": "password=" * (N // 9),
    "equals": "=" * N,
    "url_like": "a://" + ":" * N + "@",
    "schemes": "ab://x:" * (N // 7),
    "iban_like": "DE89 " * (N // 5),
    "quotes_json": "[" * N,
    "json_deep": "[" * 5000 + "]" * 5000,
    "braces": '{"a":' * (N // 5),
    "form_like": "a=1&" * (N // 4),
    "ssn_like": "123-45-" * (N // 7),
    "aws_like": "AKIA" * (N // 4),
    "sk_like": "sk-" * (N // 3),
    "mixed": ("4111 1111 x@y.io AKIA 10.0.0.1 ::1 eyJ password= " * (N // 48)),
    "unicode": "ü€𝄞" * (N // 3),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_100kb_completes_quickly(name: str) -> None:
    text = ADVERSARIAL[name]
    started = time.perf_counter()
    result = REDACTOR.redact({"app.input": text}, text)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"{name}: {elapsed:.2f}s"  # generous: typical is a few milliseconds
    assert isinstance(result.attributes, dict)


def test_over_long_strings_are_cut_and_marked() -> None:
    text = "x " * MAX_SCAN_LENGTH + "password=hunter2"
    result = REDACTOR.redact({"app.input": text})
    out = result.attributes["app.input"]
    assert out.endswith("[TRUNCATED]") and "hunter2" not in out


class Hostile:
    def __str__(self) -> str:
        raise RuntimeError("password=leaked-through-exception")

    __repr__ = __str__


def test_odd_types_cycles_and_deep_nesting_never_raise() -> None:
    cyclic: dict = {"name": "x"}
    cyclic["self"] = cyclic
    looped: list = [1]
    looped.append(looped)
    deep: dict = {}
    cursor = deep
    for _ in range(2000):
        cursor["d"] = {}
        cursor = cursor["d"]
    cursor["password"] = "deep-secret"
    attrs = {
        "bytes": b"card 4111111111111111",
        "bytearray": bytearray(b"\xff\xfe password=zz"),
        "memory": memoryview(b"bob@example.com"),
        "cyclic": cyclic,
        "looped": looped,
        "deep": deep,
        "hostile": Hostile(),
        "set": {"a", "4111111111111111"},
        "tuple": ("x", 4111111111111111),
        "float": float("nan"),
        "big_int": 10**400,
        "none": None,
        "obj": object(),
        7: "int key",
    }
    before = containment.total()
    result = REDACTOR.redact(attrs, Hostile())
    text = json.dumps(result.attributes, default=str)
    assert "4111111111111111" not in text and "deep-secret" not in text and "leaked-through" not in text
    assert result.attributes["cyclic"]["self"] == "[REDACTED:cycle]"
    assert result.attributes["hostile"] == "[REDACTED:unprintable]"
    assert result.body == "[REDACTED:unprintable]"
    assert result.attributes["7"] == "int key"
    assert containment.total() == before  # handled, not contained failures


def test_internal_failure_fails_closed_without_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    redactor = Redactor.from_config(None, environ=ENV)

    def broken(*args, **kwargs):
        raise RuntimeError("boom with password=hunter2")

    monkeypatch.setattr(redactor, "_attribute", broken)
    before = containment.counts["redaction"]
    result = redactor.redact({"audit.event_id": "e", "note": "anything"}, "body")
    assert result.attributes == {"audit.event_id": "e", "note": "[REDACTED:redaction_error]"}
    assert result.body == "[REDACTED:redaction_error]"
    assert containment.counts["redaction"] == before + 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attrs=st.dictionaries(st.text(max_size=30), json_values, max_size=8), body=json_values)
def test_never_raises_on_arbitrary_input(attrs: dict, body: object) -> None:
    before = containment.counts["redaction"]
    result = REDACTOR.redact(attrs, body, category="http", level="full")
    assert isinstance(result.attributes, dict)
    assert containment.counts["redaction"] == before


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("0123456789 -.:@/=&?ABCDEFZaeyJ_+'\"{}[]\\")), max_size=3000))
def test_arbitrary_detector_alphabet_text_is_handled_fast(text: str) -> None:
    started = time.perf_counter()
    REDACTOR.redact_text(text)
    assert time.perf_counter() - started < 1.0
