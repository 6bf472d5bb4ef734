"""``detections convert``: each backend's output parses as its format (savedsearches.conf ini
stanzas, a Loki ruler rule-group YAML whose expressions the Loki backend produced, Terraform HCL
read by python-hcl2, the API's JSON), one rule per alerting rule, thresholds where they belong."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest
import yaml

from otel_audit.cli import main

pytest.importorskip("sigma")
hcl2 = pytest.importorskip("hcl2")

from otel_audit.detections.convert import queries  # noqa: E402
from otel_audit.detections.datadog import EVALUATION_WINDOWS  # noqa: E402
from otel_audit.detections.pack import load_rules, rule_name  # noqa: E402

TUNED = """
title: Brute force on one account, tuned
id: 9d0c2b1e-0000-4000-8000-000000000002
name: otel_audit_brute_force
description: Ours.
level: critical
correlation:
  type: event_count
  rules: [otel_audit_login_failed]
  group-by: [audit.attempted_username]
  timespan: 15m
  condition: {gte: 12}
"""
# Office hours 07:00-19:00 on every day: only the hours' values differ from the shipped rule's.
TUNED_HOURS = """
title: Administrative role granted outside our office hours
id: 9d0c2b1e-0000-4000-8000-000000000003
name: otel_audit_privilege_outside_office_hours
description: Ours.
level: high
logsource: {product: otel-audit, service: audit}
detection:
  grant: {audit.action: grant_role, audit.outcome: success}
  admin_role: {audit.role.names|contains: [admin]}
  before_hours: {audit.local_time.hour|lt: 7}
  after_hours: {audit.local_time.hour|gte: 19}
  condition: grant and admin_role and (before_hours or after_hours)
"""


def convert(capsys, *args: str) -> str:
    assert main(["detections", "convert", *args]) == 0
    return capsys.readouterr().out


def alerting_names() -> list[str]:
    return [rule_name(r) for r in load_rules().alerting()]


def test_splunk_savedsearches_are_ini_stanzas_with_the_backends_searches(capsys) -> None:
    text = convert(capsys, "--backend", "splunk")
    conf = configparser.ConfigParser(interpolation=None, strict=True)
    conf.read_string(text)
    assert len(conf.sections()) == len(alerting_names())
    converted = {c.rule.title: c for c in queries(load_rules, "splunk")}
    for section in conf.sections():
        stanza = conf[section]
        item = converted[section.removeprefix("otel-audit - ")]
        assert stanza["search"] == " ".join(line.strip() for line in item.query.splitlines() if line.strip())
        assert stanza["search"].startswith(('sourcetype="otel:audit:*"', "| multisearch"))
        assert stanza["enableSched"] == "1" and len(stanza["cron_schedule"].split()) == 5
        assert stanza["dispatch.earliest_time"].startswith("-") and stanza["quantity"] == "0"
    brute = conf["otel-audit - Brute force on one account"]
    assert "| search event_count >= 5" in brute["search"] and brute["dispatch.earliest_time"] == "-300s"
    assert 'audit.action="grant_role"' in conf["otel-audit - Role or privilege granted to oneself"]["search"]
    assert "audit.target.is_actor=true" in conf["otel-audit - Role or privilege granted to oneself"]["search"]
    hours = conf["otel-audit - Administrative role granted outside office hours"]["search"]
    assert "audit.local_time.hour<8 OR audit.local_time.hour>=18 OR audit.local_time.weekday IN (6, 7)" in hours


def test_loki_rule_groups_carry_the_loki_backends_logql(capsys) -> None:
    doc = yaml.safe_load(convert(capsys, "--backend", "loki"))
    rules = doc["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == alerting_names()
    converted = {c.name: c.query for c in queries(load_rules, "loki")}
    for rule in rules:
        logql = converted[rule["alert"]]
        assert logql in rule["expr"]
        assert '{audit_category=~".+"}' in rule["expr"]  # only audit streams (loki.yaml's labels)
        assert "| logfmt" not in rule["expr"] and "audit." not in rule["expr"]  # structured metadata, Loki names
        assert rule["labels"]["severity"] and rule["for"] == "0m"
    by_name = {r["alert"]: r for r in rules}
    assert by_name["otel_audit_brute_force"]["expr"].endswith(">= 5")
    assert by_name["otel_audit_audit_tampering"]["expr"].startswith("sum(count_over_time(")
    # structured metadata is text: the rule's boolean is matched as "true"
    assert "audit_target_is_actor=~`(?i)^true$`" in by_name["otel_audit_self_granted_privilege"]["expr"]
    hours = by_name["otel_audit_privilege_outside_office_hours"]["expr"]
    assert "(audit_local_time_hour<8 or audit_local_time_hour>=18 or audit_local_time_weekday=6 or " \
           "audit_local_time_weekday=7)" in hours


def test_datadog_terraform_parses_as_hcl_and_matches_the_json(capsys) -> None:
    terraform = hcl2.loads(convert(capsys, "--backend", "datadog"))
    api = json.loads(convert(capsys, "--backend", "datadog", "--format", "json"))
    resources = [body for block in terraform["resource"] for kind, named in block.items()
                 if kind.strip('"') == "datadog_security_monitoring_rule" for body in named.values()]
    assert len(resources) == len(api) == len(alerting_names())
    for resource, body in zip(resources, api):
        assert resource["name"].strip('"') == body["name"]
        queries_ = resource["query"]
        assert [q["query"].strip('"').replace('\\"', '"') for q in queries_] == [q["query"] for q in body["queries"]]
        assert all(q["query"].startswith("source:otel_audit (") for q in body["queries"])
        assert all(q["dataSource"] == "logs" for q in body["queries"])
        assert set(body["options"].values()) - {"threshold"} <= set(EVALUATION_WINDOWS)  # values Datadog accepts
        names = {q["name"] for q in body["queries"]}
        assert set(body["cases"][0]["condition"].replace("&&", " ").split()) & names == names
    spray = next(b for b in api if b["name"].endswith("Password spraying from one address"))
    assert spray["queries"][0]["aggregation"] == "cardinality"
    assert spray["queries"][0]["distinctFields"] == ["@audit.attempted_username"]
    assert spray["queries"][0]["groupByFields"] == ["@client.address"] and spray["options"]["evaluationWindow"] == 600
    after = next(b for b in api if b["name"].endswith("Login success after a burst of failures"))
    assert after["cases"][0]["condition"] == "a >= 5 && b > 0"
    own = next(b for b in api if b["name"].endswith("Role or privilege granted to oneself"))
    assert "@audit.target.is_actor:true" in own["queries"][0]["query"] and own["cases"][0]["status"] == "critical"
    hours = next(b for b in api if b["name"].endswith("Administrative role granted outside office hours"))
    assert "(@audit.local_time.hour:<8 OR @audit.local_time.hour:>=18 OR (@audit.local_time.weekday:(6 OR 7)))" \
        in hours["queries"][0]["query"]


def test_a_team_rule_file_changes_every_backends_threshold(capsys, tmp_path: Path) -> None:
    (tmp_path / "brute-force.yml").write_text(TUNED)
    (tmp_path / "office-hours.yml").write_text(TUNED_HOURS)
    splunk = configparser.ConfigParser(interpolation=None)
    splunk.read_string(convert(capsys, "--backend", "splunk", "--rules", str(tmp_path)))
    brute = splunk["otel-audit - Brute force on one account, tuned"]
    assert "event_count >= 12" in brute["search"] and "span=15m" in brute["search"]
    hours = splunk["otel-audit - Administrative role granted outside our office hours"]["search"]
    assert "audit.local_time.hour<7 OR audit.local_time.hour>=19" in hours and "weekday" not in hours
    loki = {r["alert"]: r for r in yaml.safe_load(convert(capsys, "--backend", "loki", "--rules", str(tmp_path)))
            ["groups"][0]["rules"]}
    assert loki["otel_audit_brute_force"]["expr"].endswith(">= 12") and "[15m]" in loki["otel_audit_brute_force"]["expr"]
    assert "(audit_local_time_hour<7 or audit_local_time_hour>=19)" in loki["otel_audit_privilege_outside_office_hours"]["expr"]
    dd = {b["name"]: b for b in json.loads(convert(capsys, "--backend", "datadog", "--format", "json", "--rules",
                                                   str(tmp_path)))}
    tuned = dd["otel-audit: Brute force on one account, tuned"]
    assert tuned["cases"][0] == {"name": "Brute force on one account, tuned", "status": "critical", "condition": "a >= 12"}
    assert tuned["options"]["evaluationWindow"] == 900
    hours = dd["otel-audit: Administrative role granted outside our office hours"]["queries"][0]["query"]
    assert "(@audit.local_time.hour:<7 OR @audit.local_time.hour:>=19)" in hours
    assert len(dd) == len(alerting_names())  # replaced, not added


def test_list_names_every_rule_with_its_file(capsys) -> None:
    assert main(["detections", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == alerting_names()
    for row in rows:
        assert row["level"] and row["file"].endswith(".yml") and row["tags"]
        assert row["falsepositives"], f"{row['name']} has no false-positive notes"
