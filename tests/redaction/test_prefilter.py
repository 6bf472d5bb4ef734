"""The RE2 prefilter (the ``re2`` extra) changes speed, never findings.

Each detector's RE2 pattern must match wherever its Python regex does (a necessary condition),
and a redactor with the prefilter must give exactly what one without it gives: on generated
text, the benchmark corpus, the detector examples and the hostile inputs. Without ``re2``, or
when RE2 cannot answer, the pure-Python path is used.
"""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_audit.redaction import BUILTIN_DETECTORS, Redactor
from otel_audit.redaction import prefilter as pf
from tests.redaction import strategies as gen
from tests.redaction.test_detectors import FOUND, LOOK_ALIKES
from tests.redaction.test_fast_paths import FRAGMENTS
from tests.redaction.test_safety import ADVERSARIAL

re2 = pytest.importorskip("re2")

KEY_ENV = {"OTEL_AUDIT_HMAC_KEY": "prefilter-test-key-0123456789"}
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
CUSTOM = {
    "detectors": {"phone": "hmac", "credit_card": "partial"},
    "custom_detectors": [
        {"name": "employee_id", "pattern": r"EMP-\d{6}", "action": "hmac"},
        {"name": "loyalty_card", "pattern": r"\b\d{16}\b", "validator": "luhn"},
        {"name": "after_ref", "pattern": r"(?<=ref:)[A-Z]{3}\d{2,4}(?!\d)"},
        {"name": "doubled", "pattern": r"(?i)\b(ab|cd)-\1\b"},
        {"name": "either", "pattern": r"(x)?(?(1)yz|QW)\d\d"},
        {"name": "dotall", "pattern": r"(?s)<<.{1,2000}>>"},
        {"name": "case", "pattern": r"(?i)kelvin[^\W\d]{2}\s\S"},
    ],
}

EXTRA = [
    "ref:ABC123 and ref:abc12", "ab-AB x cd-cd", "xyz12 QW34", "<<\nsecret\n>> <<>>", "KELVIN ab c",
    "\u212aelvin\u017f\u0131 \u0130", "EMP-123456", "4111111111111111", "pass\u212aword=hunter2", "\ud800 password=x",
    "p.a-s_s.w-o_r.d = 'hunter22'", "TOKEN\t:\t\"abc\"", "x-api-key: abc", "sessionid=abcdef", "pin:1234",
]  # fmt: skip
texts = st.lists(st.sampled_from(FRAGMENTS + EXTRA) | st.text(max_size=4), min_size=1, max_size=30).map("".join)
secrets = st.one_of(
    gen.card_numbers(), gen.ibans(), gen.jwts(), gen.private_keys(), gen.emails(), gen.url_passwords().map(lambda p: p[0])
)


def pair(section=None) -> tuple[Redactor, Redactor]:
    on = Redactor.from_config(section, environ=KEY_ENV, prefilter=True)
    off = Redactor.from_config(section, environ=KEY_ENV, prefilter=False)
    assert on.prefilter_active and not off.prefilter_active
    return on, off


ON, OFF = pair({"detectors": {"phone": "mask"}})
CUSTOM_ON, CUSTOM_OFF = pair(CUSTOM)


def same(text: str) -> None:
    for on, off in ((ON, OFF), (CUSTOM_ON, CUSTOM_OFF)):
        assert on.redact_text(text) == off.redact_text(text)
        assert on.redact({"app.input": text}, text) == off.redact({"app.input": text}, text)


# ---------------------------------------------------------------- necessary conditions


def _entries(redactor: Redactor):
    return redactor._plan.entries


@given(texts)
@SETTINGS
def test_each_re2_pattern_matches_wherever_the_python_regex_does(text: str) -> None:
    for redactor in (ON, CUSTOM_ON):
        for entry in _entries(redactor):
            compiled = entry[0]
            if compiled.search(text) is None:
                continue
            try:
                encoded = text.encode("utf-8")
            except UnicodeEncodeError:
                continue  # such texts take the pure-Python path (see below)
            assert re2.search(pf.necessary_pattern(compiled.pattern, compiled.flags), encoded), (compiled.pattern, text)


def test_custom_patterns_with_look_arounds_back_references_and_conditionals_are_converted() -> None:
    # None of the policy's detectors is "always run": each got an RE2 necessary condition.
    assert CUSTOM_ON._prefilter.always == ()
    for pattern, text in [
        (r"(?<=ref:)[A-Z]{3}\d{2,4}(?!\d)", "ref:ABC12"),
        (r"(?i)\b(ab|cd)-\1\b", "AB-ab"),
        (r"(x)?(?(1)yz|QW)\d\d", "QW12"),
        (r"\d{2000}", "1" * 2000),  # over RE2's repetition limit: widened
    ]:
        assert re.search(pattern, text)
        assert re2.search(pf.necessary_pattern(pattern), text)


def test_non_ascii_case_folds_table_is_complete() -> None:
    # Every non-ASCII character that Python's case-insensitive matching equates with an ASCII
    # letter is in the table (the RE2 pattern adds it explicitly).
    letter = re.compile("(?i)[a-z]")
    found: dict[str, set[int]] = {}
    for code in range(0x80, sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        if letter.fullmatch(char):
            for ascii_letter in "abcdefghijklmnopqrstuvwxyz":
                if re.fullmatch("(?i)" + ascii_letter, char):
                    found.setdefault(ascii_letter, set()).add(code)
    assert found == {k: set(v) for k, v in pf.NON_ASCII_FOLDS.items()}


def test_secret_name_condition_covers_every_secret_name() -> None:
    from otel_audit.redaction.keys import SECRET_KEY_NAMES, SECRET_KEY_PARTS

    condition = re2.compile(pf.secret_name_condition())
    for name in list(SECRET_KEY_NAMES) + [part for part, _ in SECRET_KEY_PARTS]:
        for spelled in (name, name.upper(), "db_" + name, "-".join(name), name + '" '):
            assert condition.search(spelled), spelled


# ---------------------------------------------------------------- same findings


@given(texts)
@SETTINGS
def test_same_output_on_generated_text(text: str) -> None:
    same(text)


@given(secrets, st.sampled_from(FRAGMENTS), st.sampled_from(["", " ", "=", ": ", "password=", "\n"]))
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_same_output_on_generated_secrets(secret: str, fragment: str, sep: str) -> None:
    same(fragment + sep + secret + " " + fragment)


def test_same_output_on_the_benchmark_corpus() -> None:
    from benchmarks.corpus.generate import generate

    corpus = generate(1200)
    for item in corpus:
        same(item["text"])
    # And the prefilter is what makes the difference: most of it reaches only a few detectors.
    picked = [len(ON._prefilter(item["text"])) for item in corpus]
    assert sum(picked) < len(corpus) * len(_entries(ON)) / 3


@pytest.mark.parametrize("text", [t for _, t, _ in FOUND] + LOOK_ALIKES + EXTRA)
def test_same_output_on_detector_examples(text: str) -> None:
    same(text)


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_same_output_on_hostile_input(name: str) -> None:
    text = ADVERSARIAL[name]
    assert ON.redact_text(text) == OFF.redact_text(text)


# ---------------------------------------------------------------- fallbacks


def test_a_clean_text_runs_no_detector_and_a_text_re2_cannot_read_runs_them_all() -> None:
    assert ON._prefilter("just a plain sentence") == []
    assert ON._prefilter("lone \ud800 surrogate password=hunter22") is None  # not UTF-8: every detector
    same("lone \ud800 surrogate password=hunter22 4111 1111 1111 1111")


def test_a_pattern_re2_refuses_is_always_run() -> None:
    items = [(r"abc\d", 0, "first"), (r"xyz", 0, "second")]
    built = pf.Prefilter(items, prefixes={1: "(?<=q)"})  # RE2 has no look-behind: refused
    assert built.always == (1,)
    assert built("abc1") == ["first", "second"]
    assert built("nothing") == ["second"]


def test_without_re2_the_redactor_uses_the_pure_python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pf, "_re2", None)  # as when the extra is not installed
    redactor = Redactor.from_config(None, environ=KEY_ENV)
    assert not redactor.prefilter_active
    assert redactor.redact_text("card 4111 1111 1111 1111") == OFF.redact_text("card 4111 1111 1111 1111")
