"""The redactor's shortcuts find exactly what the plain way finds.

Speed comes from skipping work (docs/redaction.md, Speed): regexes tried only where an anchor
literal occurs, gates on a text's shape, secret names read backwards from the operator, cached
per-key and per-record plans. Each shortcut is checked here against the plain computation it
replaces, on generated text, so a shortcut that misses something fails a test.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_audit.redaction import BUILTIN_DETECTORS, Redactor
from otel_audit.redaction import detectors
from otel_audit.redaction.detectors import SHAPE_TABLE
from otel_audit.redaction.scan_plan import DetectorGroup, ScanPlan
from otel_audit.redaction.text_scan import Anchored, find_keyed, find_validated, find_validated_at, secret_name_before
from otel_audit.redaction.walk import _Pass
from otel_audit.redaction import validators as v
from otel_audit.redaction.keys import NOT_SECRET_KEY_NAMES, SECRET_KEY_NAMES, SECRET_KEY_PARTS, builtin_key_rule, normalise

KEY_ENV = {"OTEL_AUDIT_HMAC_KEY": "fast-path-test-key-0123456789"}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

FRAGMENTS = [
    "password", "Pass_Word", "db.password", "token", "TOKEN", "Bearer", "bearer", "basic", "Basic", "aws", "AWS",
    "secret", "Secret", "sessionid", "sid", "pin", "theme", "Host", "x", "=", ":", " ", "\t", "  ", '"', "'", "\n",
    "-", "_", ".", "&", ";", "?", "@", "://", "xoxb-", "hooks.slack.com/services/", "sk_live_", "rk_test_", "k_live_",
    "4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444", "4111111111111112", "1700000000000",
    "078-05-1120", "123-45-6789", "10.0.0.1", "1.2.3", "255.255.255.255", "12.", "0.", "DE89370400440532013000",
    "GB82 WEST 1234 5698 7654 32", "DE00", "AB12", "abcdefghij0123456789ABCDEFGHIJ", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "YWxpY2U6czNjcjN0", "9f8e7d6c5b4a39281706abcd", "0", "9", "a", "Z", "é", "İ", "K", "ſ", "€",
]  # fmt: skip
texts = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), min_size=1, max_size=30).map("".join)

ANCHORED = [d for d in BUILTIN_DETECTORS if d.anchors]


def _haystack(detector, text: str):
    if detector.anchor_in == "lower":
        return text.lower()
    if detector.anchor_in == "shape":
        return text.encode("ascii").translate(SHAPE_TABLE)
    return text


def _all_matches(search, text: str) -> list[tuple[int, int]]:
    found, position = [], 0
    while position <= len(text):
        match = search(text, position)
        if match is None:
            break
        found.append(match.span())
        position = match.start() + 1
    return found


@pytest.mark.parametrize("detector", ANCHORED, ids=[d.name for d in ANCHORED])
def test_anchored_search_finds_what_a_search_finds(detector) -> None:
    @SETTINGS
    @given(text=texts)
    def check(text: str) -> None:
        if detector.anchor_in != "text" and not text.isascii():
            return  # the engine searches non-ASCII text the plain way
        anchored = Anchored(detector.compiled, detector.anchors, _haystack(detector, text))
        assert _all_matches(anchored, text) == _all_matches(detector.compiled.search, text)

    check()


DIGIT_FRAGMENTS = [
    "4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444", "1700841026755 200", "12 ", "9781637656211",
    "078-05-1120", "123-45-6789", "10.0.0.1", "1.2.3", "255.255.255.255", "0", "7", " ", "-", ".", "a", "_", "x1",
    "4111111111111111", "6011-2714-0739-9428", "  ", "--", "1700139675442129788", ":", "é",
]  # fmt: skip
digit_texts = st.lists(st.sampled_from(DIGIT_FRAGMENTS) | st.text("0123456789 -.a", max_size=4), min_size=1, max_size=25).map(
    "".join
)
LEAD_GROUPS = [
    tuple(d for d in BUILTIN_DETECTORS if d.lead and d.name in names)
    for names in ({"credit_card", "us_ssn", "ipv4"}, {"credit_card", "us_ssn"}, {"credit_card", "ipv4"}, {"us_ssn", "ipv4"})
]


@pytest.mark.parametrize("members", LEAD_GROUPS, ids=["+".join(d.name for d in g) for g in LEAD_GROUPS])
def test_group_starts_hold_every_match_start(members) -> None:
    """Card, SSN and IPv4 are one regex tried only at the places DetectorGroup.starts lists: every
    place a plain search finds a match is listed, and the validated findings are the same."""
    group = DetectorGroup(r"\d", members)
    assert group.anchored

    @SETTINGS
    @given(text=digit_texts | texts)
    def check(text: str) -> None:
        plain = find_validated(group.compiled, group.members, text)
        if not text.isascii():
            return  # the engine searches non-ASCII text the plain way
        starts = group.starts(text.encode("ascii").translate(SHAPE_TABLE))
        assert starts == sorted(set(starts))
        every = {start for start, _ in _all_matches(group.compiled.search, text)}
        assert every <= set(starts)
        assert find_validated_at(group.compiled, group.members, text, starts) == plain

    check()


def test_group_pass_finds_what_a_plain_search_finds_in_records() -> None:
    """The whole redactor (shape gates, group starts) against the plain group search."""
    redactor = Redactor.from_config(None, environ=KEY_ENV)
    (group,) = [entry.anchored for entry in redactor._plan.entries if isinstance(entry.anchored, DetectorGroup)]
    text = "12 4111111111111111 and 1700841026755 200, 078-05-1120 at 10.0.0.1; 4111-1111-1111-1111 9781637656211"
    spans = find_validated(group.compiled, group.members, text)
    assert [(text[s:e], d.name) for s, e, d in spans] == [
        ("4111111111111111", "credit_card"), ("078-05-1120", "us_ssn"), ("10.0.0.1", "ipv4"),
        ("4111-1111-1111-1111", "credit_card"),
    ]  # fmt: skip
    out = redactor.redact_text(text)
    assert "4111111111111111" not in out and "078-05-1120" not in out and "10.0.0.1" not in out
    assert "1700841026755 200" in out and "9781637656211" in out


#: The definition the backwards reading replaces: the leftmost name in the 48 characters before
#: the operator, then an optional quote and at most 5 spaces or tabs.
_NAME_BEFORE = re.compile(r"([A-Za-z][A-Za-z0-9_.-]{0,40})[\"']?[ \t]{0,5}\Z")


def _reference_secret_name_before(text: str, operator: int) -> bool:
    found = _NAME_BEFORE.search(text, max(0, operator - 48), operator)
    return found is not None and builtin_key_rule(found.group(1)) is not None


@SETTINGS
@given(text=texts | st.builds(lambda n, t: "a" * n + t, st.integers(30, 60), texts))
def test_secret_name_read_backwards_matches_the_definition(text: str) -> None:
    for operator in range(len(text) + 1):
        assert secret_name_before(text, operator) == _reference_secret_name_before(text, operator)


@SETTINGS
@given(text=texts)
def test_keyed_pass_finds_what_the_operator_by_operator_scan_finds(text: str) -> None:
    detector = next(d for d in BUILTIN_DETECTORS if d.name == "secret_assignment")
    expected, position = [], 0
    while True:
        match = detector.compiled.search(text, position)
        if match is None:
            break
        if not _reference_secret_name_before(text, match.start()):
            position = match.start() + 1
            continue
        expected.append((*match.span("value"), detector))
        position = match.end()
    assert find_keyed(detector.compiled, detector, text) == expected


def test_anchored_detectors_still_find_secrets_in_non_ascii_text() -> None:
    redactor = Redactor.from_config(None, environ=KEY_ENV)
    text = "café İstanbul: Authorization: Bearer 9f8e7d6c5b4a39281706abcd, iban DE89370400440532013000, ssn 078-05-1120"
    out = redactor.redact_text(text)
    for secret in ("9f8e7d6c5b4a39281706abcd", "DE89370400440532013000", "078-05-1120"):
        assert secret not in out


def test_records_redact_the_same_the_second_time() -> None:
    """Per-key-set plans and the clean-value caches change speed, not results."""
    redactor = Redactor.from_config(None, environ=KEY_ENV)
    record = {
        "audit.event_id": "e1", "http.route": "/login", "enduser.id": "alice", "user_agent.original": "Mozilla/5.0 (X11)",
        "app.note": "card 4111 1111 1111 1111", "db.query.text": "SELECT * FROM t WHERE a = 'bob@example.com'",
        "app.labels": ["short", "a longer clean label"], "client.port": 51234, "app.big": 4111111111111111,
    }  # fmt: skip
    first = redactor.redact(record, "alice logged in", category="http", level="request")
    second = redactor.redact(record, "alice logged in", category="http", level="request")
    assert first.attributes == second.attributes and first.body == second.body
    assert (first.count, first.fields) == (second.count, second.fields) == (3, ["app.note", "db.query.text", "app.big"])
    assert list(second.attributes) == list(record)  # order kept
    assert second.attributes["db.query.text"] == "SELECT * FROM t WHERE a = ?"


def test_clean_text_seen_before_is_still_parsed_when_it_is_json() -> None:
    """A string found clean as plain text is skipped next time only if it cannot be JSON or a
    form body: as JSON, its keys are judged by the key rules."""
    redactor = Redactor.from_config(None, environ=KEY_ENV)
    as_name = 'a=1&{"password?":"x1"}=2'  # the second name is scanned as plain text (it holds "?")
    redactor.redact({"app.form": as_name})
    result = redactor.redact({"app.body": '{"password?":"x1"}'})
    assert result.attributes["app.body"] == '{"password?": "[REDACTED:secret_key]"}'
    assert result.count == 1


def test_clean_sql_text_is_remembered_only_without_literals() -> None:
    redactor = Redactor.from_config(None, environ=KEY_ENV)
    for _ in range(2):
        with_literal = redactor.redact({"db.query.text": "UPDATE t SET note = 'x1234' WHERE id = 7"})
        assert with_literal.attributes["db.query.text"] == "UPDATE t SET note = ? WHERE id = ?"
        assert with_literal.count == 1
        placeholders = redactor.redact({"db.query.text": "UPDATE t SET note = ? WHERE id = ?"})
        assert placeholders.attributes["db.query.text"] == "UPDATE t SET note = ? WHERE id = ?"
        assert placeholders.count == 0
    assert "UPDATE t SET note = 'x1234' WHERE id = 7" not in redactor._clean_sql


def test_forgetting_clean_values_makes_the_next_call_scan_again(monkeypatch) -> None:
    """The redaction benchmark empties the clean-value caches before each timed pass over its
    unique corpus; without that, passes after the first are answered from the cache."""
    redactor = Redactor.from_config(None, environ=KEY_ENV)
    scans: list[str] = []
    plain_scan = redactor._scan_uncached

    def counting_scan(text, state, plan):
        scans.append(text)
        return plain_scan(text, state, plan)

    monkeypatch.setattr(redactor, "_scan_uncached", counting_scan)
    text = "GET /api/orders/1700841026755 200 in 12ms; user agent curl/8.5.0"
    sql = "UPDATE t SET note = ? WHERE id = ?"
    for _ in range(2):
        assert redactor.redact_text(text) == text
        assert redactor.redact({"db.query.text": sql}).attributes["db.query.text"] == sql
    assert scans.count(text) == 1  # the second call was answered from the cache
    redactor.forget_clean_values()
    assert redactor.redact_text(text) == text
    assert scans.count(text) == 2
    assert not redactor._clean_sql


def _reference_luhn(digits: str) -> bool:
    total, double = 0, False
    for char in reversed(digits):
        value = ord(char) - 48
        if double:
            value = value * 2 - 9 if value * 2 > 9 else value * 2
        total += value
        double = not double
    return total % 10 == 0


def _reference_payment_card(text: str) -> int:
    """The card validator's definition: one separator kind, 13-19 digits, issuer prefix, Luhn,
    else the longest prefix ending at a separator that is a card."""

    def whole(candidate: str) -> bool:
        digits = "".join(c for c in candidate if c.isdigit())
        if len({c for c in candidate if not c.isdigit()}) > 1 or not 13 <= len(digits) <= 19:
            return False
        return v._card_prefix_ok(digits) and _reference_luhn(digits)

    if whole(text):
        return len(text)
    for end in range(len(text) - 1, 12, -1):
        if text[end] in " -" and whole(text[:end]):
            return end
    return 0


card_like = st.lists(
    st.sampled_from([
        "4111111111111111", "6011111111111117", "5555555555554444", "378282246310005", "6011 1111 1111 1117",
        "4111", "1111", "5555", "4444", "6011", "3782", "1700", "9781", "0", "2", " ", "-", "x", "٣", "²",
    ])  # fmt: skip
    | st.text("0123456789 -", max_size=6),
    min_size=1,
    max_size=8,
).map("".join)


@SETTINGS
@given(digits=st.text("0123456789", max_size=24) | st.text(max_size=6))
def test_luhn_summed_in_c_matches_the_loop(digits: str) -> None:
    assert v.luhn_ok(digits) == _reference_luhn(digits)


@SETTINGS
@given(text=card_like)
def test_card_validator_shortcuts_match_its_definition(text: str) -> None:
    """The first-digit rejection and the separator removal in C change nothing (not even which
    odd digits, like ``²``, make ``int()`` fail)."""
    assert _outcome(v.payment_card, text) == _outcome(_reference_payment_card, text)


def _outcome(function, argument):
    try:
        return function(argument)
    except (ValueError, IndexError) as exc:
        return type(exc)


@SETTINGS
@given(key=texts | st.text(max_size=12))
def test_key_normalisation_shortcut_matches_its_definition(key: str) -> None:
    """Lower case, ``-``/``_``/``.`` and whitespace removed; alphanumeric names skip the removal."""
    assert normalise(key) == re.sub(r"[-_.\s]", "", key.lower())


@pytest.mark.parametrize("action", ["mask", "hmac", "partial"])
@pytest.mark.parametrize("missing_key", ["ephemeral", "mask"])
def test_detector_replacement_shortcuts_match_the_general_action(action: str, missing_key: str) -> None:
    """A detector's string finding is replaced as ``_apply`` replaces any value (same text,
    same count, same pseudonym bookkeeping)."""
    config = {"detectors": {d.name: action for d in BUILTIN_DETECTORS}, "hmac": {"missing_key": missing_key}}
    for environ in (KEY_ENV, {}):
        redactor = Redactor.from_config(config, environ=environ)
        for detector in BUILTIN_DETECTORS:
            for found in ("4111 1111 1111 1111", "bob@example.com", "x"):
                shortcut, general = _Pass(), _Pass()
                replaced = redactor._detector_replacement(detector, found, shortcut)
                expected = redactor._apply(action, detector.name, found, general)
                assert replaced == expected
                assert (shortcut.count, shortcut.used_hmac) == (general.count, general.used_hmac)


#: One text per built-in detector that it finds (so the checks below see real matches).
DETECTOR_EXAMPLES = [
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "Bearer 9f8e7d6c5b4a39281706abcd", "Basic YWxpY2U6czNjcjN0", "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "ghp_" + "a1B2" * 9,
    "github_pat_" + "a1_B" * 6, "glpat-" + "x1Y2" * 5, "xoxb-1234567890-abcdef", "hooks.slack.com/services/T000/B000/XXXX",
    "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "AIza" + "Sy" * 17 + "A", "sk-proj-" + "abcd1234" * 3,
    "postgres://app:hunter2@db.internal/prod", "https://x.example/a?X-Amz-Signature=abc123&b=1",
    "Cookie: sessionid=abc123", "db_password = hunter2", "4111 1111 1111 1111", "DE89370400440532013000",
    "078-05-1120", "bob@example.com", "10.0.0.1", "2001:db8::1", "+49 30 1234 5678",
]  # fmt: skip
need_texts = st.lists(st.sampled_from(FRAGMENTS + DETECTOR_EXAMPLES) | st.text(max_size=3), min_size=1, max_size=12).map(
    "".join
)


def _meets_needs(detector, span: str) -> bool:
    """What :attr:`Detector.needs`, ``needs_digit`` and ``needs_capital`` claim of every match."""
    return (
        all(any(c in span for c in alternatives) for alternatives in detector.needs)
        and (not detector.needs_digit or any(c.isdecimal() for c in span))
        and (not detector.needs_capital or any("A" <= c <= "Z" for c in span))
    )


NEEDY = [d for d in BUILTIN_DETECTORS if d.needs or d.needs_digit or d.needs_capital]


def test_every_detector_example_is_found() -> None:
    for detector in BUILTIN_DETECTORS:
        assert any(
            detector.compiled.search(example) for example in DETECTOR_EXAMPLES
        ), f"no example for {detector.name}"  # fmt: skip


@pytest.mark.parametrize("detector", NEEDY, ids=[d.name for d in NEEDY])
def test_needed_characters_occur_in_every_match(detector) -> None:
    """The plan skips a detector for a text without the characters it needs: every match of its
    regex (validated or not) contains them."""
    for example in DETECTOR_EXAMPLES:
        for start, end in _all_matches(detector.compiled.search, example):
            assert _meets_needs(detector, example[start:end]), example

    @SETTINGS
    @given(text=need_texts | texts)
    def check(text: str) -> None:
        for start, end in _all_matches(detector.compiled.search, text):
            assert _meets_needs(detector, text[start:end])

    check()


def _scan_both_ways(config: dict | None, text: str) -> None:
    redactor = Redactor.from_config(config, environ=KEY_ENV)
    plain_plan = ScanPlan(redactor._plan.entries, dispatch=False)
    fast, plain = _Pass(), _Pass()
    assert redactor._scan_uncached(text, fast, redactor._plan) == redactor._scan_uncached(text, plain, plain_plan)
    assert (fast.count, fast.used_hmac, fast.drop_attribute) == (plain.count, plain.used_hmac, plain.drop_attribute)


@SETTINGS
@given(text=need_texts | texts | digit_texts)
def test_plan_selected_by_the_texts_characters_scans_like_the_whole_plan(text: str) -> None:
    """Entries left out for a text's characters and length change nothing (also with the
    opt-in phone detector and a custom detector, which need nothing)."""
    _scan_both_ways(None, text)
    _scan_both_ways(
        {"detectors": {"phone": "mask"}, "custom_detectors": [{"name": "emp", "pattern": r"EMP\d{4}", "action": "mask"}]},
        text,
    )


def _reference_key_rule(key: str):
    """The key rules' definition: exact names, then the first part (in order) the name holds."""
    name = re.sub(r"[-_.\s]", "", key.lower())
    if not name or name in NOT_SECRET_KEY_NAMES:
        return None
    if name in SECRET_KEY_NAMES:
        return SECRET_KEY_NAMES[name]
    return next((rule for part, rule in SECRET_KEY_PARTS if part in name), None)


KEY_FRAGMENTS = [part for part, _ in SECRET_KEY_PARTS] + list(SECRET_KEY_NAMES)[:20] + list(NOT_SECRET_KEY_NAMES)[:5] + [
    "db", "_", "-", ".", "x", "Host", "traceparent", "User-Agent", "ss", "cr", "ke", "th", "ok", "SeSSion", "K", "ſ",
]  # fmt: skip


@SETTINGS
@given(key=st.lists(st.sampled_from(KEY_FRAGMENTS) | st.text(max_size=3), min_size=1, max_size=4).map("".join))
def test_key_rule_pair_gate_matches_the_definition(key: str) -> None:
    """Names holding none of the letter pairs every secret part contains skip the part loop."""
    assert builtin_key_rule(key) == _reference_key_rule(key)


#: The patterns as they were, case-insensitive throughout (the definition the scoped ``(?i:...)``
#: plus explicit letters replaces).
CASE_INSENSITIVE_PATTERNS = {
    "bearer_token": r"(?i)\b(?:bearer|token)\s{1,10}(?P<value>[A-Za-z0-9._~+/=-]{12,4096})",
    "basic_auth": r"(?i)\bbasic\s{1,10}(?P<value>[A-Za-z0-9+/]{4,2048}={0,2})",
    "aws_secret_key": r"(?i)(?:aws|secret)[A-Za-z0-9_.-]{0,30}[\"']?\s{0,5}[:=]\s{0,5}[\"']?(?P<value>[A-Za-z0-9/+]{40})"
    r"(?![A-Za-z0-9/+=])",
}
CASE_FRAGMENTS = ["İ", "ı", "ſ", "K", "k", "K", "é", "ß"]


def test_caseless_letters_are_what_ignorecase_adds_to_a_letter_class() -> None:
    extra = [chr(i) for i in range(0x110000) if re.fullmatch(r"(?i)[A-Za-z]", chr(i)) and not re.fullmatch("[A-Za-z]", chr(i))]
    assert "".join(extra) == detectors._CASELESS


@pytest.mark.parametrize("name", sorted(CASE_INSENSITIVE_PATTERNS))
def test_scoped_case_insensitivity_matches_like_the_whole_pattern_case_insensitive(name: str) -> None:
    detector = next(d for d in BUILTIN_DETECTORS if d.name == name)
    plain = re.compile(CASE_INSENSITIVE_PATTERNS[name])

    @SETTINGS
    @given(text=st.lists(st.sampled_from(FRAGMENTS + DETECTOR_EXAMPLES + CASE_FRAGMENTS), min_size=1, max_size=14).map("".join))
    def check(text: str) -> None:
        def spans(compiled):
            return [(m.span(), m.span("value")) for m in (compiled.search(text, s) for s, _ in _all_matches(compiled.search, text))]

        assert spans(detector.compiled) == spans(plain)

    check()


def _reference_bearer_token(text: str) -> int:
    token = text.split()[-1]
    return len(text) if any(c.isdigit() or c in "._-+/=~" for c in token) else 0


@SETTINGS
@given(text=st.text(min_size=1, max_size=12).filter(str.split) | st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=6).map(" ".join))
def test_bearer_token_validator_regex_matches_its_loop(text: str) -> None:
    assert _outcome(v.bearer_token, text) == _outcome(_reference_bearer_token, text)


@SETTINGS
@given(
    key=st.binary(min_size=16, max_size=150)
    | st.sampled_from([16, 63, 64, 65, 150]).flatmap(lambda size: st.binary(min_size=size, max_size=size)),
    value=st.text(max_size=40),
)
def test_pseudonym_pads_compute_the_hmac(key: bytes, value: str) -> None:
    """The pseudonym's HMAC from pre-hashed pads equals hmac.new's (keys longer than a block too)."""
    redactor = Redactor(Redactor.from_config(None, environ={}).settings, key=key)
    expected = hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:20]
    assert redactor._pseudonym("email", value, _Pass()) == f"[HMAC:{expected}]"


RECORD_KEYS = ["url.path", "http.route", "user_agent.original", "user.name", "user.roles", "audit.target.id",
               "url.query", "db.query.text", "db.query.parameters", "password", "audit.action", "client.port",
               "http.request.header.authorization", "audit.request.body"]
record_values = st.one_of(texts, st.integers(-(10**13), 10**13), st.lists(texts, max_size=3), st.none(),
                          st.dictionaries(st.sampled_from(["a", "password", "note"]), texts, max_size=2))


@SETTINGS
@given(records=st.lists(st.tuples(st.dictionaries(st.sampled_from(RECORD_KEYS), record_values, max_size=6),
                                  st.one_of(st.none(), texts)), min_size=1, max_size=4),
       level=st.sampled_from(["metadata", "request", "full"]))
def test_a_record_said_untouched_redacts_to_itself_counting_nothing(records, level) -> None:
    redactor = Redactor.from_config(None, KEY_ENV)
    for attributes, body in records + records:  # the second time round, clean texts are known
        untouched = redactor.untouched(dict(attributes), body, category="http", level=level)
        result = redactor.redact(dict(attributes), body, category="http", level=level)
        if untouched:
            assert result.attributes == attributes and result.body == body and result.count == 0


def test_the_usual_record_is_untouched_from_its_second_time_and_a_secret_never_is() -> None:
    redactor = Redactor.from_config(None, KEY_ENV)
    usual = {"audit.action": "request", "url.path": "/api/items/123", "http.route": "/api/items/<id>",
             "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)", "client.port": 51000,
             "user.roles": ["admin", "editor"]}
    body = "alice read item 123: success"
    first = redactor.untouched(usual, body, category="data_access", level="metadata")
    redactor.redact(usual, body, category="data_access", level="metadata")
    assert not first and redactor.untouched(usual, body, category="data_access", level="metadata")
    card = dict(usual, **{"url.path": "/pay/4111111111111111"})
    for _ in range(2):
        assert not redactor.untouched(card, body, category="data_access", level="metadata")
        assert redactor.redact(card, body, category="data_access", level="metadata").count == 1
    allow = Redactor.from_config({"allow": [{"categories": ["data_access"], "attributes": ["audit.*"]}]}, KEY_ENV)
    allow.redact(usual, body, category="data_access", level="metadata")
    assert not allow.untouched(usual, body, category="data_access", level="metadata")  # the allow-list drops keys


def test_a_record_past_the_node_bound_is_never_untouched() -> None:
    redactor = Redactor.from_config(None, KEY_ENV)
    huge = {f"item{n}": ["ab"] * 60 for n in range(400)}  # 24,400 nodes: redaction stops at 20,000
    small = dict(list(huge.items())[:10])
    assert redactor.redact(dict(huge), None).count > 0
    assert not redactor.untouched(huge, None)
    assert redactor.untouched(small, None) and redactor.redact(dict(small), None).count == 0
