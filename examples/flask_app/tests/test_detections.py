"""Detections in the example's own suite: simulated attacks make the rule pack fire on the
records the app really produces; a normal session fires nothing; a team's own rule file tunes a
threshold. Needs the detections extra (pip install 'otel-audit[detections]')."""

from __future__ import annotations

import pytest

from otel_audit.testing.attacks import Login, Request, StoryClient

pytest.importorskip("sigma")
pytestmark = pytest.mark.audit_policy("../policy.yaml")

LOGIN = Login("/login", username_field="username", password_field="password")


def test_guessing_one_password_is_a_brute_force(client, audit_trail, attacks):
    attacks.brute_force(StoryClient(client), LOGIN, "alice", attempts=6)

    alert = audit_trail.assert_detects("brute_force")
    assert len(alert.event_ids) == 6


def test_one_password_against_many_accounts_is_a_spray(client, audit_trail, attacks):
    attacks.spray(StoryClient(client), LOGIN, ["alice", "bob", "carol", "dave", "erin"])

    audit_trail.assert_detects("otel_audit_password_spray")


def test_granting_admin_is_an_escalation(client, audit_trail, attacks):
    attacks.escalate_privilege(StoryClient(client), LOGIN, "bob", "battery staple",
                               Request("POST", "/admin/users/alice/role", json={"role": "admin"}))

    audit_trail.assert_detects("privilege_escalation")


def test_a_normal_day_fires_nothing(client, audit_trail, attacks):
    attacks.benign_session(StoryClient(client), LOGIN, "alice", "correct horse", typos=2,
                           work=[Request("POST", "/notes", json={"title": "plan", "body": "draft"}),
                                 Request("PUT", "/notes/{id}", json={"title": "plan v2"}),
                                 Request("DELETE", "/notes/{id}")])

    audit_trail.assert_no_detections()


def test_a_team_rule_file_raises_the_threshold(client, audit_trail, attacks, tmp_path):
    # The same name as the shipped correlation replaces it; its base rule comes from the pack.
    (tmp_path / "brute-force.yml").write_text("""
title: Brute force on one account, ten in five minutes
id: 9d0c2b1e-0000-4000-8000-000000000001
name: otel_audit_brute_force
description: Our login page sits behind SSO; ten misses is the bar.
level: high
correlation:
  type: event_count
  rules: [otel_audit_login_failed]
  group-by: [audit.attempted_username]
  timespan: 5m
  condition: {gte: 10}
""")
    attacks.brute_force(StoryClient(client), LOGIN, "alice", attempts=6)

    assert not [a for a in audit_trail.detections(rules=[tmp_path]) if a.rule == "otel_audit_brute_force"]
    attacks.brute_force(StoryClient(client), LOGIN, "alice", attempts=4)
    audit_trail.assert_detects("brute_force", rules=[tmp_path])
