"""``otel-audit policy plan OLD NEW --trail FILE`` on a real trail: the Flask example served under
the launcher, driven through its scripted session, recorded by the embedded sink and (a second
run) sent as OTLP to a receiver and written as OTLP JSON. Hand-made policy pairs with known
differences get exactly those; the shipped packs plan as their rules say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otel_audit.demo import EXAMPLES, read_trail, serve_example
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.procs import REPO, base_env

EXAMPLE_POLICY = REPO / "examples" / "flask_app" / "policy.yaml"


@pytest.fixture(scope="module")
def sink_trail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("plan-sink")
    sink = workdir / "audit.jsonl"
    with serve_example("flask", sink, workdir) as base_url:
        EXAMPLES["flask"].drive(base_url)
    assert len(read_trail(sink)) > 10
    return sink


@pytest.fixture(scope="module")
def otlp_trail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("plan-otlp")
    with OtlpReceiver() as receiver:
        with serve_example("flask", workdir / "unused.jsonl", workdir, extra_env={
                "OTEL_AUDIT_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"{receiver.endpoint}/v1/logs"}) as base_url:
            EXAMPLES["flask"].drive(base_url)
        bodies = list(receiver.raw_bodies)
    lines = []
    for body in bodies:
        request = ExportLogsServiceRequest()
        request.ParseFromString(body)
        lines.append(json.dumps(MessageToDict(request)))
    path = workdir / "otlp.json"
    path.write_text("\n".join(lines) + "\n")
    return path


def variant(tmp_path: Path, name: str, *edits: tuple[str, str]) -> Path:
    """The example's policy with text replacements (each must apply)."""
    text = EXAMPLE_POLICY.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


QUIETER = (
    ("rules:\n", "rules:\n  - id: quiet-admin-pages\n    match: {method: GET, path: /admin/users}\n    level: none\n"),
    ("  - id: role-changes\n    match: {category: authorization}\n    level: full",
     "  - id: role-changes\n    match: {category: authorization}\n    level: request"),
    ("  - id: deletes\n    match: {method: DELETE}\n    level: request\n", ""),
)
NO_GRANT_ROUTE = (('  - id: grant-role\n    request: "POST /admin/users/{username}/role"\n    category: authorization\n'
                   '    action: grant_role\n', ""),)
REDACT_ROLE = (("rules:\n", "redaction:\n  keys:\n    - {match: [role], action: mask}\nrules:\n"),)


def plan(old: Path | str, new: Path | str, trail: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otel_audit.cli", "policy", "plan", str(old), str(new),
                           "--trail", str(trail), *args], cwd=REPO, env=base_env(), capture_output=True, text=True,
                          timeout=120)


def differences(result: subprocess.CompletedProcess) -> list[tuple[str, str, str, str, int]]:
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    return [(d["kind"], d["subject"], d["old"], d["new"], d["count"]) for d in report["differences"]]


def test_the_same_policy_changes_nothing(sink_trail: Path) -> None:
    result = plan(EXAMPLE_POLICY, EXAMPLE_POLICY, sink_trail, "--format", "json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["differences"] == []
    assert report["replayed"] == report["unchanged"] > 10 and report["not_from_old"] == 0


def test_a_quieter_policy_shows_its_drop_and_level_changes(sink_trail: Path, tmp_path: Path) -> None:
    quieter = variant(tmp_path, "quieter", *QUIETER)
    assert differences(plan(EXAMPLE_POLICY, quieter, sink_trail, "--format", "json")) == [
        ("no longer audited", "audit.http.request GET /admin/users", "request by rule admin-area",
         "not audited (rule quiet-admin-pages)", 1),
        ("level", "audit.authorization.grant_role POST /admin/users/<username>/role", "full by rule role-changes",
         "request by rule role-changes", 1),
        ("level", "audit.data_modification.delete_resource DELETE /notes/<int:note_id>", "request by rule deletes",
         "metadata by rule default", 1),
    ]
    text = plan(EXAMPLE_POLICY, quieter, sink_trail, "--fail-on-drop")
    assert text.returncode == 1
    assert "FAIL: 1 recorded events would no longer be audited (--fail-on-drop)" in text.stdout
    assert ("Plan: 0 newly audited, 1 no longer audited, 2 level changes, 0 event name changes, 0 redaction "
            "changes;") in text.stdout
    assert plan(EXAMPLE_POLICY, quieter, sink_trail).returncode == 0  # without --fail-on-drop it only reports
    # the other way round, the same request is newly audited
    back = differences(plan(quieter, EXAMPLE_POLICY, sink_trail, "--format", "json"))
    assert back[0] == ("newly audited", "audit.http.request GET /admin/users", "not audited (rule quiet-admin-pages)",
                       "request by rule admin-area", 1)


def test_a_removed_grant_route_leaves_the_grant_named_by_its_change(sink_trail: Path, tmp_path: Path) -> None:
    found = differences(plan(EXAMPLE_POLICY, variant(tmp_path, "no-grant", *NO_GRANT_ROUTE), sink_trail,
                             "--format", "json"))
    # Without the route the grant is still a grant: the row it changes is the user table's role
    # field, which names it whichever layer saw it (issue #18) - so the plan shows no change.
    assert found == []


def test_a_new_key_rule_is_a_redaction_change(sink_trail: Path, tmp_path: Path) -> None:
    found = differences(plan(EXAMPLE_POLICY, variant(tmp_path, "redact-role", *REDACT_ROLE), sink_trail,
                             "--format", "json"))
    assert found == [("redaction", "audit.authorization.grant_role POST /admin/users/<username>/role",
                      "redacted: http.request.header.cookie",
                      "redacted: audit.request.body, audit.response.body, http.request.header.cookie", 1)]


def test_an_otlp_json_trail_plans_the_same(sink_trail: Path, otlp_trail: Path, tmp_path: Path) -> None:
    quieter = variant(tmp_path, "quieter", *QUIETER)
    assert (differences(plan(EXAMPLE_POLICY, quieter, otlp_trail, "--format", "json"))
            == differences(plan(EXAMPLE_POLICY, quieter, sink_trail, "--format", "json")))


@pytest.mark.parametrize("pack, kinds", [
    ("pci-dss", {"level"}),       # its rules raise levels on admin actions and credential stores
    ("soc2", {"level"}),
    ("gdpr", {"redaction"}),      # pseudonymises who: enduser.id, user.name, client.address
    ("hipaa", set()),             # nothing of the notes app is health data
])
def test_moving_from_the_default_to_a_pack_never_drops_anything(sink_trail: Path, pack: str, kinds: set) -> None:
    result = plan("pack:default", f"pack:{pack}", sink_trail, "--format", "json", "--fail-on-drop")
    assert result.returncode == 0, result.stdout
    report = json.loads(result.stdout)
    assert {d["kind"] for d in report["differences"]} == kinds
    assert all(d["old"].startswith("metadata by rule default") for d in report["differences"] if d["kind"] == "level")
    if pack == "gdpr":
        assert any("enduser.id" in d["new"] and "enduser.id" not in d["old"] for d in report["differences"])


def test_a_bad_trail_is_exit_2_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event_name": "audit.http.request", "attributes": {}}\nnot json\n')
    result = plan("pack:default", "pack:default", bad)
    assert result.returncode == 2 and f"--trail {bad}:2: not JSON" in result.stderr
    missing = plan("pack:default", "pack:default", tmp_path / "none.jsonl")
    assert missing.returncode == 2 and "cannot read it" in missing.stderr
