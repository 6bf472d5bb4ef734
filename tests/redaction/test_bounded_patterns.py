"""No policy can hang the app: super-linear custom detectors are refused at load (naming the
detector, the construct and the place in the file), the accepted ones run on a linear-time engine
(RE2), and a text whose native scan hits PCRE2's match limit is redacted whole and counted."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_audit.cli import main
from otel_audit.redaction import RedactionConfigError, Redactor, text_scan, validate_config
from otel_audit.redaction.detectors import Detector
from otel_audit.redaction.scan_plan import NativeScanner, ScanPlan, plan_entries
from otel_audit.redaction.linear import LinearPattern
from tests.support.procs import base_env, launcher

HANG = r"(a+)+$"
POLICY = f"id: hang\nredaction:\n  custom_detectors:\n    - name: order_ref\n      pattern: '{HANG}'\n"


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        (r"(a+)+$", "a nested quantifier"),
        (r"x(\w+\s?)*$", "a nested quantifier"),
        (r"(a{1,5})+", "a nested quantifier"),
        (r"(a|aa)+b", "alternatives that can start with the same character"),
        (r"(?:ab|\wc)*!", "alternatives that can start with the same character"),
        (r"(x+)y\1", "a backreference"),
        (r"(?<!\w)EMP\d{4}", "a lookahead or lookbehind"),
        (r"EMP\d{4}(?=\b)", "a lookahead or lookbehind"),
    ],
)
def test_superlinear_patterns_are_refused_naming_the_detector(pattern: str, construct: str) -> None:
    with pytest.raises(RedactionConfigError) as raised:
        validate_config({"custom_detectors": [{"name": "order_ref", "pattern": pattern}]})
    message = str(raised.value)
    assert message.startswith("redaction.custom_detectors[0].pattern: custom detector 'order_ref': ")
    assert "matches in linear time" in message and construct in message


@pytest.mark.parametrize("pattern", [r"EMP-\d{6}", r"\bEMP\d{16}\b", r"(?:[a-z]{1,63}\.){1,8}corp", r"(?:ab|cd)+!", r"EMP\d{4}\Z"])
def test_linear_patterns_are_accepted_and_run_on_re2(pattern: str) -> None:
    redactor = Redactor.from_config({"custom_detectors": [{"name": "order_ref", "pattern": pattern}]}, environ={})
    custom = [d for d in redactor.settings.detectors if d.kind == "custom"]
    assert [type(d.compiled) for d in custom] == [LinearPattern]


def test_policy_validate_names_the_rule_and_where_it_is(tmp_path, capsys) -> None:
    path = tmp_path / "hang.yaml"
    path.write_text(POLICY)
    code = main(["policy", "validate", str(path)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 1, text
    assert "redaction.custom_detectors[0].pattern: custom detector 'order_ref'" in text
    assert "a nested quantifier" in text and f"({path}:5:" in text


def test_start_up_refuses_the_policy_when_fail_closed(tmp_path) -> None:
    path = tmp_path / "hang.yaml"
    path.write_text(POLICY)
    result = subprocess.run(
        [launcher(), sys.executable, "-c", "print('app body ran')"],
        env=base_env(OTEL_AUDIT_SINK_PATH=str(tmp_path / "a.jsonl"), OTEL_AUDIT_POLICY=str(path), OTEL_AUDIT_FAIL_MODE="closed"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 78, result.stderr
    assert "app body ran" not in result.stdout
    assert "refusing to start" in result.stderr and "custom detector 'order_ref'" in result.stderr


def test_custom_detector_finds_what_re_finds_with_unicode_positions() -> None:
    """RE2 runs on the UTF-8 bytes; spans come back in characters (the value group too)."""
    section = {"custom_detectors": [{"name": "order_ref", "pattern": r"ref=(?P<value>ORD\d{4})\b"}]}
    redactor = Redactor.from_config(section, environ={})
    assert redactor.redact_text("élan ref=ORD1234 ünd ref=ORD5678") == (
        "élan ref=[REDACTED:order_ref] ünd ref=[REDACTED:order_ref]"
    )


def test_a_native_scan_that_hits_the_match_limit_redacts_the_text_whole() -> None:
    """PCRE2 stops at its match limit: the text is then masked, not rescanned by Python's
    backtracking ``re`` (which would take minutes here and find nothing)."""
    if NativeScanner is None:
        pytest.skip("the native scan loop is not built")
    redactor = Redactor.from_config(None, environ={})
    # A secret-kind detector reaches the native loop (custom ones never do): the limit is PCRE2's.
    nested = Detector("nested", "secret", "exponential on purpose", HANG, "mask")
    redactor._plan = ScanPlan(plan_entries((nested,)), native=True)
    assert redactor._plan.native is not None
    before = text_scan.SCAN_LIMIT_HITS[0]
    result = redactor.redact({"note": "a" * 26 + "!"}, audit_record=False)
    assert result.attributes["note"] == "[REDACTED:scan_limit]"
    assert result.count == 1 and result.fields == ["note"]
    assert text_scan.SCAN_LIMIT_HITS[0] == before + 1


# A small grammar of patterns: atoms, classes, groups, alternation and quantifiers.
_ATOMS = st.sampled_from(["a", "b", "ab", r"\d", "[ab]", "[^a]", r"\w", "."])
_QUANTIFIERS = st.sampled_from(["", "", "?", "*", "+", "{2}", "{1,3}", "{2,}"])


def _patterns() -> st.SearchStrategy[str]:
    leaf = st.builds(lambda atom, quantifier: atom + quantifier, _ATOMS, _QUANTIFIERS)

    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        group = st.builds(lambda parts, quantifier: "(?:" + "|".join(parts) + ")" + quantifier,
                          st.lists(children, min_size=1, max_size=3), _QUANTIFIERS)  # fmt: skip
        return group | st.builds(lambda a, b: a + b, children, children)

    return st.recursive(leaf, extend, max_leaves=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=_patterns(), text=st.text(alphabet="ab1!", max_size=12), runs=st.integers(1, 2000))
def test_every_accepted_pattern_runs_on_the_linear_engine(pattern: str, text: str, runs: int) -> None:
    """Either the policy is refused, or its detector runs on RE2 (linear in the text whatever the
    pattern) and finds what Python's ``re`` finds; on an adversarial text (a long run of the
    pattern's own characters and a mismatching end) the scan answers by the bounded engine."""
    section = {"custom_detectors": [{"name": "order_ref", "pattern": pattern + "!"}]}
    try:
        redactor = Redactor.from_config(section, environ={})
    except RedactionConfigError as exc:
        assert "custom detector 'order_ref'" in str(exc)
        return
    detector = next(d for d in redactor.settings.detectors if d.kind == "custom")
    assert type(detector.compiled) is LinearPattern
    found = detector.compiled.search(text)
    expected = re.search(pattern + "!", text, re.ASCII)
    assert (found.span() if found else None) == (expected.span() if expected else None)
    adversarial = "ab1" * runs + "\n"  # every candidate fails only at its end
    assert redactor.redact_text(adversarial) == adversarial
