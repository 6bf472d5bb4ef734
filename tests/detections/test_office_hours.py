"""``otel_audit_privilege_outside_office_hours`` on each example app under the launcher: the same
admin grant, recorded under the app's policy with ``local_time.zone`` chosen so that now is 03:00
there, fires through ``detections test``; chosen so that it is 13:00 on a working day, it does
not. The app's clock is never touched: only the zone its policy names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otel_audit.cli import main
from otel_audit.testing.attacks import zone_at_local_hour

from .stories import APPS, play_in_zone

pytest.importorskip("sigma")

RULE = "otel_audit_privilege_outside_office_hours"
#: A team that works every day of the week: the shipped rule, its weekend clause left out.
EVERY_DAY = """
title: Administrative role granted outside our office hours
id: 9d0c2b1e-0000-4000-8000-000000000403
name: otel_audit_privilege_outside_office_hours
description: Ours, seven days a week.
level: high
logsource: {product: otel-audit, service: audit}
detection:
  grant: {audit.action: grant_role, audit.outcome: success}
  admin_role: {audit.role.names|contains: [admin, superuser, staff, root, owner]}
  privilege_field: {audit.changes.fields|contains: [is_superuser, is_staff]}
  before_hours: {audit.local_time.hour|lt: 8}
  after_hours: {audit.local_time.hour|gte: 18}
  condition: grant and (admin_role or privilege_field) and (before_hours or after_hours)
"""


def fired(capsys, trail: Path, *args: str) -> list[dict]:
    assert main(["detections", "test", "--trail", str(trail), "--json", *args]) in (0, 1)
    return [a for a in json.loads(capsys.readouterr().out)["alerts"] if a["rule"] == RULE]


def grants(trail: Path) -> list[dict]:
    records = [json.loads(line)["attributes"] for line in trail.read_text().splitlines()]
    return [a for a in records if a.get("audit.action") == "grant_role" and a.get("audit.outcome") == "success"]


@pytest.mark.parametrize("app", list(APPS))
def test_an_admin_grant_fires_outside_office_hours_and_not_inside(app: str, tmp_path: Path, capsys) -> None:
    team = tmp_path / "team-rules"
    team.mkdir()
    (team / "office-hours.yml").write_text(EVERY_DAY)

    night = zone_at_local_hour(3)  # before 08:00, whatever the day
    night_trail = play_in_zone(app, tmp_path / "night", night)
    [grant] = grants(night_trail)
    assert grant["audit.local_time.zone"] == night and grant["audit.local_time.hour"] in (2, 3, 4)
    alerts = fired(capsys, night_trail, "--expect", RULE)
    assert alerts and alerts[0]["event_ids"] == [grant["audit.event_id"]]
    assert fired(capsys, night_trail, "--rules", str(team))  # the team's copy: still outside its hours

    # 13:00 on a working day somewhere, unless it is the weekend everywhere (Saturday 12:00 to Sunday 10:00 UTC)
    day = zone_at_local_hour(13, weekdays=range(1, 6)) or zone_at_local_hour(13)
    day_trail = play_in_zone(app, tmp_path / "day", day)
    [grant] = grants(day_trail)
    assert grant["audit.local_time.zone"] == day and grant["audit.local_time.hour"] in (12, 13, 14)
    weekend = grant["audit.local_time.weekday"] in (6, 7)
    assert bool(fired(capsys, day_trail)) is weekend  # on a working day: inside office hours, quiet
    assert fired(capsys, day_trail, "--rules", str(team)) == []  # the team works weekends: quiet either way
