"""The converted detections run on what otel-audit really sends: the Flask example under the
launcher plays the attack stories, exporting OTLP to the real Collector with the shipped
splunk.yaml, loki.yaml and datadog-otlp.yaml; every field each converted query references (the
Splunk search, the LogQL, the Datadog queries) is a field of the records at that backend's
stand-in (HEC fields, Loki labels and structured metadata, Datadog attributes)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import DELIVERY_TIMEOUT, wait_until
from .standins import Datadog, Loki, SplunkHEC
from .test_backend_fields import LOKI_CONFIG
from .test_e2e import DD_API_KEY, SPLUNK_TOKEN

pytest.importorskip("sigma")

# Rule branches the Flask example cannot produce (it grants role names; Django flags is_staff):
# the field exists, at the other apps' stand-ins, but not in this trail.
NOT_IN_FLASK = {"audit.changes.fields"}

SPL_FIELD = re.compile(r'(?<![\w.|])([a-z_][\w.]*)(?:[<>!]?=|[<>]|\s+IN\s+\()')
SPL_BY = re.compile(r"\bby _time ([\w. ]+?)\s*(?:\||$)")
SPL_DC = re.compile(r"\bdc\(([\w.]+)\)")
LOGQL_FIELD = re.compile(r"\b([a-zA-Z_]\w*)\s*(?:=~|!~|!=|[<>]=?|=)")
LOGQL_BY = re.compile(r"\b(?:by|without) \(([^)]*)\)")
DD_FIELD = re.compile(r"@([\w.]+):")


def splunk_fields(search: str) -> set[str]:
    found = set(SPL_FIELD.findall(search)) | set(SPL_DC.findall(search))
    for group in SPL_BY.findall(search):
        found.update(group.split())
    return found - {"span", "event_type", "event_count", "value_count", "event_type_count"}  # SPL's own names


def logql_fields(expr: str) -> set[str]:
    found = set(LOGQL_FIELD.findall(expr))
    for group in LOGQL_BY.findall(expr):
        found.update(name.strip() for name in group.split(","))
    return found


def datadog_fields(body: dict) -> set[str]:
    found = set()
    for query in body["queries"]:
        found.update(DD_FIELD.findall(query["query"]))
        found.update(f.removeprefix("@") for f in query.get("groupByFields", []) + query.get("distinctFields", []))
    return found


def _play(base_url: str) -> None:
    from tests.detections.stories import APPS, stories

    for story, (_, play) in stories(APPS["flask"]).items():
        play(base_url)


def test_converted_queries_reference_only_fields_present_at_each_backend(run_collector, tmp_path: Path, capsys) -> None:
    from otel_audit.cli import main
    from otel_audit.demo import serve_example
    from otel_audit.detections.pipelines import loki_name

    with SplunkHEC(SPLUNK_TOKEN) as splunk, Loki(**LOKI_CONFIG) as loki, Datadog(DD_API_KEY) as dd:
        collector = run_collector(
            ["gateway.yaml", "splunk.yaml", "loki.yaml", "datadog-otlp.yaml"],
            env={"SPLUNK_HEC_ENDPOINT": f"{splunk.base_url}/services/collector/event", "SPLUNK_HEC_TOKEN": SPLUNK_TOKEN,
                 "LOKI_ENDPOINT": loki.base_url, "DD_OTLP_LOGS_ENDPOINT": f"{dd.base_url}/v1/logs",
                 "DD_API_KEY": DD_API_KEY})
        otlp = {"OTEL_LOGS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_BLRP_SCHEDULE_DELAY": "100"}
        with serve_example("flask", tmp_path / "unused.jsonl", tmp_path, extra_env=otlp) as base_url:
            _play(base_url)

        def everywhere():
            names = [{r["fields"].get("event_name") for r in splunk.snapshot()},
                     {r["event_name"] for r in loki.snapshot()}, {r["event_name"] for r in dd.snapshot()}]
            wanted = {"audit.authentication.login_failed", "audit.authorization.grant_role", "audit.data_access.export",
                      "audit.data_modification.delete_resource", "audit.audit_system.stop"}
            return names if all(wanted <= n for n in names) else None

        wait_until(everywhere, DELIVERY_TIMEOUT, what="the attack stories' records at all three stand-ins")
        splunk_records, loki_streams, dd_records = splunk.snapshot(), loki.streams(), dd.snapshot()
        hec_fields = {k for r in splunk.snapshot() for k in r["fields"]} | {"sourcetype"}
        assert all(r["sourcetype"].startswith("otel:audit:") for r in splunk.snapshot())
        loki_fields = {k for s in loki.streams() for k in (*s["labels"], *s["structured_metadata"])}
        dd_fields = {k for r in dd.snapshot() for k in r["attributes"]}
        assert {r["attributes"].get("ddsource") for r in dd.snapshot()} == {"otel_audit"}  # source:otel_audit

    assert main(["detections", "convert", "--backend", "splunk"]) == 0
    searches = re.findall(r"^search = (.*)$", capsys.readouterr().out, re.M)
    assert main(["detections", "convert", "--backend", "loki"]) == 0
    import yaml

    exprs = [r["expr"] for r in yaml.safe_load(capsys.readouterr().out)["groups"][0]["rules"]]
    assert main(["detections", "convert", "--backend", "datadog", "--format", "json"]) == 0
    bodies = json.loads(capsys.readouterr().out)
    assert searches and exprs and bodies

    spl = set().union(*map(splunk_fields, searches))
    logql = set().union(*map(logql_fields, exprs))
    ddq = set().union(*map(datadog_fields, bodies))
    assert {"audit.action", "audit.attempted_username", "client.address", "enduser.id"} <= spl  # the parser sees them
    # what the self-grant and office-hours rules match: written by otel-audit itself, compared as numbers
    computed = {"audit.target.is_actor", "audit.local_time.hour", "audit.local_time.weekday"}
    assert computed <= spl and {loki_name(f) for f in computed} <= logql and computed <= ddq
    assert spl - NOT_IN_FLASK <= hec_fields, f"Splunk searches use fields HEC lacks: {sorted(spl - NOT_IN_FLASK - hec_fields)}"
    missing_loki = logql - {loki_name(f) for f in NOT_IN_FLASK} - loki_fields
    assert not missing_loki, f"LogQL uses names Loki lacks: {sorted(missing_loki)}"
    assert ddq - NOT_IN_FLASK <= dd_fields, f"Datadog queries use attributes it lacks: {sorted(ddq - NOT_IN_FLASK - dd_fields)}"
    # the self-grant story's boolean arrives as each query spells it: text "true" in HEC fields and
    # Loki's structured metadata (its LogQL matches the text), a JSON boolean at Datadog
    assert "true" in {str(f.get("audit.target.is_actor")).lower() for f in (r["fields"] for r in splunk_records)}
    assert "true" in {s["structured_metadata"].get("audit_target_is_actor") for s in loki_streams}
    assert True in {r["attributes"].get("audit.target.is_actor") for r in dd_records}
