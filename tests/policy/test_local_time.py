"""``local_time``: records of the listed categories carry their local hour, ISO weekday and zone in
the zone the policy names (what an office-hours rule compares), DST included; other categories
carry none; an unset section changes no policy hash; a zone that does not exist is refused."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from otel_audit.event import AuditEvent
from otel_audit.pipeline import Decision, Enrich
from otel_audit.policy import PolicyError, load_policy

LOCAL = ("audit.local_time.hour", "audit.local_time.weekday", "audit.local_time.zone")


def at(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()) * 1_000_000_000


def stamped(policy_text: str, iso: str, category: str = "authorization", action: str = "grant_role") -> dict:
    event = AuditEvent(category, action, outcome="success", time_unix_nano=at(iso))
    event.decision = Decision(level="metadata", rule="test")
    record = Enrich(load_policy(policy_text, environ={}))(event).record
    return {key: record.attributes[key] for key in LOCAL if key in record.attributes}


@pytest.mark.parametrize("zone, iso, hour, weekday", [
    ("UTC", "2024-01-15T20:40:00", 20, 1),  # Monday evening
    ("Asia/Kolkata", "2024-01-15T20:40:00", 2, 2),  # +05:30: already Tuesday
    ("America/New_York", "2024-01-15T12:00:00", 7, 1),  # EST, -05:00
    ("America/New_York", "2024-07-15T12:00:00", 8, 1),  # EDT, -04:00
    ("Pacific/Kiritimati", "2024-01-14T11:00:00", 1, 1),  # +14: Sunday in UTC, Monday there
], ids=["utc", "half-hour-offset", "winter", "summer", "plus-14"])
def test_the_record_carries_its_hour_and_weekday_in_the_policys_zone(zone, iso, hour, weekday) -> None:
    assert stamped(f"local_time: {{zone: {zone}}}", iso) == {
        "audit.local_time.hour": hour, "audit.local_time.weekday": weekday, "audit.local_time.zone": zone}


def test_the_default_zone_is_utc() -> None:
    assert stamped("{}", "2024-01-13T03:10:00") == {
        "audit.local_time.hour": 3, "audit.local_time.weekday": 6, "audit.local_time.zone": "UTC"}


def test_consecutive_records_across_a_dst_change_each_get_their_own_hour() -> None:
    policy = "local_time: {zone: Europe/Berlin}"  # 2024-03-31 01:00 UTC: 02:00 CET becomes 03:00 CEST
    assert stamped(policy, "2024-03-31T00:59:59")["audit.local_time.hour"] == 1
    assert stamped(policy, "2024-03-31T01:00:00")["audit.local_time.hour"] == 3
    enrich = Enrich(load_policy(policy, environ={}))  # one stamper, its quarter-hour cache in play
    hours = []
    for iso in ("2024-03-31T00:44:00", "2024-03-31T00:59:59", "2024-03-31T01:00:00", "2024-03-31T00:30:00"):
        event = AuditEvent("authorization", "grant_role", time_unix_nano=at(iso))
        event.decision = Decision(level="metadata", rule="test")
        hours.append(enrich(event).record.attributes["audit.local_time.hour"])
    assert hours == [1, 1, 3, 1]


def test_only_the_listed_categories_carry_it() -> None:
    assert stamped("{}", "2024-01-15T20:40:00", "data_modification", "delete_resource") == {}
    assert stamped("{}", "2024-01-15T20:40:00", "authentication", "login") == {}
    assert stamped("{}", "2024-01-15T20:40:00", "account_management", "create_user")
    assert stamped("{}", "2024-01-15T20:40:00", "admin", "update_resource")
    logins = "local_time: {categories: [authentication]}"
    assert stamped(logins, "2024-01-15T20:40:00", "authentication", "login")["audit.local_time.hour"] == 20
    assert stamped(logins, "2024-01-15T20:40:00") == {}
    assert stamped("local_time: {categories: []}", "2024-01-15T20:40:00") == {}


def test_extends_merges_the_section_key_by_key(tmp_path) -> None:
    (tmp_path / "base.yaml").write_text("local_time: {zone: Asia/Tokyo, categories: [admin]}\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nlocal_time: {zone: Europe/Lisbon}\n")
    settings = load_policy(str(tmp_path / "child.yaml"), environ={}).model.local_time
    assert (settings.zone, settings.categories) == ("Europe/Lisbon", ("admin",))


def test_an_unset_section_keeps_the_policys_hash_and_a_zone_changes_it() -> None:
    plain = load_policy("id: p", environ={}).hash
    assert load_policy("id: p\nlocal_time: {zone: UTC}", environ={}).hash == plain  # the defaults, spelt out
    assert load_policy("id: p\nlocal_time: {zone: Europe/Berlin}", environ={}).hash != plain


def test_a_zone_that_does_not_exist_is_a_policy_error_naming_the_field(tmp_path) -> None:
    (tmp_path / "policy.yaml").write_text("id: p\nlocal_time:\n  zone: Mars/Olympus_Mons\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(str(tmp_path / "policy.yaml"), environ={})
    [problem] = caught.value.problems
    assert str(problem).startswith("local_time.zone: 'Mars/Olympus_Mons' is not a time zone: expected an IANA name")
    assert str(problem).endswith("policy.yaml:3:9)")
    with pytest.raises(PolicyError, match=r"local_time\.zone: '\.\./etc/passwd' is not a time zone"):
        load_policy("local_time: {zone: ../etc/passwd}", environ={})  # not read as a path
