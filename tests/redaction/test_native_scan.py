"""The native scan loop (``otel_audit/redaction/_native``, Rust + PCRE2) finds exactly what the
Python scan finds: same spans, same actions, same counts, on the benchmark corpus and on generated
text, under several policies. Texts PCRE2 would read differently go to Python; custom detectors
keep the whole plan in Python; the environment can switch the native loop off."""

from __future__ import annotations

import shutil
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.corpus.generate import generate
from otel_audit.redaction import Redactor
from otel_audit.config import NATIVE_SCAN_ENV
from otel_audit.redaction.scan_plan import MAX_REJECTIONS, NativeScanner, ScanPlan
from otel_audit.redaction.walk import _Pass
from tests.redaction.strategies import card_numbers, emails, ibans, jwts, luhn_invalid_numbers, private_keys
from tests.redaction.test_fast_paths import DETECTOR_EXAMPLES, FRAGMENTS, KEY_ENV, SETTINGS, digit_texts, need_texts, texts

needs_native = pytest.mark.skipif(
    NativeScanner is None, reason="the native scanner is not built here (no cargo when the package was installed)"
)

#: Policies whose plans differ: the defaults; every detector on with every kind of action; some off.
POLICIES = [
    None,
    {"detectors": {"phone": "mask", "credit_card": "partial", "email": "drop", "iban": "mask", "ipv4": "partial", "ipv6": "mask"}},
    {"detectors": {"us_ssn": "off", "jwt": "hmac", "url_credentials": "partial", "secret_assignment": "drop"}},
]


def _redactor(policy) -> Redactor:
    redactor = Redactor.from_config(policy, environ=KEY_ENV)
    assert redactor._plan.native is not None
    return redactor


def _assert_same_both_ways(redactor: Redactor, text: str) -> str:
    python_plan = ScanPlan(redactor._plan.entries)  # the same entries, scanned in Python
    native, python = _Pass(), _Pass()
    native_result = redactor._scan_uncached(text, native, redactor._plan)
    python_result = redactor._scan_uncached(text, python, python_plan)
    assert native_result == python_result, text
    assert (native.count, native.used_hmac, native.drop_attribute) == (python.count, python.used_hmac, python.drop_attribute)
    return native_result


def test_native_scanner_is_built_where_cargo_is() -> None:
    """CI installs the package with cargo present, so the native loop is what the tests and the
    benchmark exercise there; a failed build must not pass unnoticed as pure Python."""
    if shutil.which("cargo") is None:
        pytest.skip("cargo is not installed: the package is pure Python here")
    assert NativeScanner is not None, "cargo is present but otel_audit.redaction._scanner was not built"
    assert Redactor.from_config(None, environ=KEY_ENV)._plan.native is not None
    from otel_audit.redaction import _scanner

    assert _scanner.optimised(), "the native scanner is a debug build (pyproject.toml: debug = false)"


@needs_native
@pytest.mark.parametrize("policy", POLICIES, ids=["defaults", "all-actions", "some-off"])
def test_native_scan_matches_python_on_the_benchmark_corpus(policy) -> None:
    redactor = _redactor(policy)
    changed = 0
    for item in generate(1200):
        if _assert_same_both_ways(redactor, item["text"]) != item["text"]:
            changed += 1
    assert changed > 900  # the corpus is mostly secrets: the comparison is not between two no-ops


secrets_in_text = st.tuples(
    st.sampled_from(["", "password=", "token: ", "card ", "x", "\n", '"', "Bearer "]),
    card_numbers() | ibans() | jwts() | emails() | private_keys() | luhn_invalid_numbers() | st.sampled_from(DETECTOR_EXAMPLES),
    st.text(string.printable, max_size=8),
).map("".join)
controls = st.lists(st.sampled_from(FRAGMENTS) | st.text(string.printable + "\x1c\x1d\x1e\x1f\x85", max_size=4), max_size=20).map("".join)


@needs_native
@SETTINGS
@given(text=need_texts | texts | digit_texts | secrets_in_text | controls, policy=st.sampled_from(POLICIES))
def test_native_scan_matches_python_on_generated_text(text: str, policy) -> None:
    _assert_same_both_ways(_redactor(policy), text)


@needs_native
@pytest.mark.parametrize("text", ["café password=hunter2 4111 1111 1111 1111", "a\x1fpassword=hunter2\x1c 4111111111111111"])
def test_text_pcre2_would_read_differently_is_scanned_in_python(text: str) -> None:
    """Non-ASCII text, and ASCII with U+001C..U+001F (whitespace to Python's ``\\s``, not to
    PCRE2's), are handed back to the Python scan, and are still redacted."""
    redactor = _redactor(None)
    assert redactor._plan.native.scan(text) is None
    result = _assert_same_both_ways(redactor, text)
    assert "hunter2" not in result and "4111" not in result


@needs_native
def test_too_many_rejected_candidates_mask_the_whole_text_natively() -> None:
    text = " ".join(["4111111111111112"] * (MAX_REJECTIONS + 10))  # Luhn-invalid: each candidate rejected
    redactor = _redactor(None)
    assert redactor._plan.native.scan(text).name == "credit_card"
    assert _assert_same_both_ways(redactor, text) == "[REDACTED:credit_card]"


@needs_native
def test_native_spans_name_their_detectors_in_text_order() -> None:
    """Sorted as the engine merges them (by start, the longest first), so it need not sort."""
    text = "password=hunter2 mail bob@example.com, card 4111 1111 1111 1111, url postgres://app:pw@db.internal/x"
    spans = _redactor(None)._plan.native.scan(text)
    assert [(text[start:end], detector.name) for start, end, detector in spans] == [
        ("hunter2", "secret_assignment"), ("bob@example.com", "email"), ("4111 1111 1111 1111", "credit_card"),
        ("pw@db.internal", "email"), ("pw", "url_credentials"),
    ]  # fmt: skip


def test_custom_detectors_keep_the_plan_in_python() -> None:
    """A policy's own regex may use syntax PCRE2 reads differently: such a plan is scanned in Python."""
    policy = {"custom_detectors": [{"name": "employee_id", "pattern": r"EMP\d{4}\Z", "action": "mask"}]}
    redactor = Redactor.from_config(policy, environ=KEY_ENV)
    assert redactor._plan.native is None
    assert redactor.redact_text("badge EMP1234") == "badge [REDACTED:employee_id]"
    assert redactor.redact_text("badge EMP1234\n") == "badge EMP1234\n"  # Python's \Z: the very end only


def test_native_scan_can_be_switched_off(monkeypatch) -> None:
    monkeypatch.setenv(NATIVE_SCAN_ENV, "false")
    redactor = Redactor.from_config(None, environ=KEY_ENV)
    assert redactor._plan.native is None
    assert redactor.redact_text("login failed, password=hunter2") == "login failed, password=[REDACTED:secret_assignment]"


@needs_native
def test_one_scanner_shared_by_threads_finds_what_it_finds_alone() -> None:
    """Web servers redact on many threads with one redactor: callbacks into Python let threads
    interleave inside the native loop, which must not mix their matches."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    redactor = _redactor(None)
    items = [item["text"] for item in generate(300)]
    alone = [redactor._plan.native.scan(text) for text in items]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows
    try:
        with ThreadPoolExecutor(4) as pool:
            together = [list(pool.map(redactor._plan.native.scan, items)) for _ in range(3)]
    finally:
        sys.setswitchinterval(interval)
    for run in together:
        assert run == alone
