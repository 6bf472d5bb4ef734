"""``otel-audit compliance report``: requirement -> rules -> the example app's routes and tables
-> tests, and the out-of-scope lines, in text and JSON; gaps fail it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.compliance.conftest import POLICIES
from tests.support.procs import REPO, base_env

FLASK_APP = ["--app", "app:app", "--app-dir", str(REPO / "examples" / "flask_app"), "--table", "notes",
             "--table", "users"]


def report(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otel_audit.cli", "compliance", "report", *args], cwd=cwd,
                          env=base_env(NOTES_DB=str(cwd / "notes.db")), capture_output=True, text=True, timeout=60)


def _section(out: str, requirement: str) -> str:
    start = out.index(f"\n  {requirement}  ")
    end = out.find("\n  10.", start + 1)
    return out[start:end if end != -1 else len(out)]


def test_text_report_for_the_flask_example_under_a_policy_extending_the_pack(tmp_path):
    result = report("--pack", "pci-dss", "--policy", str(POLICIES / "notes-cardholder-data.yaml"), *FLASK_APP,
                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("otel-audit compliance report: PCI DSS 4.0.1 (pack:pci-dss)\npolicy notes-pci version 1 sha256:")
    assert "app app:app (flask): 15 routes, 2 tables" in out
    assert "    user identification: enduser.id or audit.attempted_username" in out

    chd = _section(out, "10.2.1.1")
    assert ("rules:    pci-dss.cardholder-data, pci-dss.cardholder-data-objects, pci-dss.cardholder-data-routes, "
            "notes-are-cardholder-data, note-endpoints-are-cardholder-data") not in chd  # policy order, not listing order
    assert "notes-are-cardholder-data" in chd and "note-endpoints-are-cardholder-data" in chd
    assert ("route:    GET /notes/<int:note_id> [member 200] -> audit.http.request by note-endpoints-are-cardholder-data "
            "(metadata) covered") in chd
    assert "table:    notes [SELECT] -> audit.data_access.read_resource by notes-are-cardholder-data (metadata) covered" in chd
    assert "users" not in chd  # not cardholder data
    assert "test:     tests/compliance/test_pci_dss.py::test_10_2_1_1_individual_access_to_cardholder_data" in chd

    privileges = _section(out, "10.2.1.5")
    assert ("route:    POST /admin/users/<username>/role [admin 200] -> audit.authorization.grant_role by "
            "pci-dss.account-and-privilege-changes (request) covered") in privileges
    assert ("route:    POST /admin/users/<username>/role [member 403] -> audit.authorization.grant_role by "
            "pci-dss.access-denied (metadata) recorded") in privileges
    assert "table:    users [UPDATE] -> audit.data_modification.update_resource by pci-dss.credential-stores (request) covered" \
        in privileges

    partial = out.split("PARTIAL (what an application library can do):", 1)[1].split("OUT OF SCOPE", 1)[0]
    assert "10.2.1.3  Audit logs capture all access to audit logs" in partial
    assert "cannot be seen by an application library" in " ".join(partial.split())
    assert "10.2.1.6" in partial and "10.2.1.7" in partial

    out_of_scope = out.split("OUT OF SCOPE for an application library:\n", 1)[1]
    for line in ("  10.4  Audit logs are reviewed to identify anomalies or suspicious activity",
                 "  10.5.1  Audit log history is retained for at least 12 months, three months immediately available",
                 "  10.6  Time-synchronization mechanisms support consistent time settings across all systems",
                 "  10.7  Failures of critical security control systems are detected, reported, and responded to "
                 "promptly",
                 "  10.3.2-10.3.4  Audit log files are protected from modification, promptly backed up, and changes "
                 "are detected"):
        assert line in out_of_scope
    assert "Retention is set in the backend" in out_of_scope and "NTP" in out_of_scope
    assert "otel-audit verify" in " ".join(out_of_scope.split())
    assert out.rstrip().endswith("OK: every route and table event these requirements need is recorded")
    assert "7 requirements addressed (4 covered, 3 partial), 6 out of scope" in out


def test_json_report(tmp_path):
    result = report("--pack", "pci-dss", "--format", "json", *FLASK_APP, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["pack"] == "pci-dss" and data["policy"]["id"] == "pci-dss" and data["gaps"] == []
    assert data["app"] == {"spec": "app:app", "framework": "flask", "routes": 15, "tables": 2}
    by_id = {r["id"]: r for r in data["requirements"]}
    assert set(by_id) == {f"10.2.1.{n}" for n in range(1, 8)}
    assert by_id["10.2.1.1"]["hits"] == []  # the pack alone does not know notes hold card numbers
    invalid = by_id["10.2.1.4"]
    assert invalid["rules_in_policy"] == ["pci-dss.invalid-logins", "pci-dss.access-denied", "pci-dss.unauthenticated"]
    assert {"kind": "route", "subject": "POST /login", "probe": "anonymous 401",
            "event_name": "audit.authentication.login_failed", "decided_by": "pci-dss.invalid-logins",
            "level": "metadata", "status": "covered"} in invalid["hits"]
    assert invalid["tests"] == ["tests/compliance/test_pci_dss.py::test_10_2_1_4_invalid_logical_access_attempts"]
    assert {o["id"] for o in data["out_of_scope"]} == {"10.3.1", "10.3.2-10.3.4", "10.4", "10.5.1", "10.6", "10.7"}
    assert all(o["reason"] for o in data["out_of_scope"])


def test_a_rule_of_yours_that_switches_events_off_is_a_gap(tmp_path):
    policy = tmp_path / "quiet.yaml"
    policy.write_text("extends: pack:pci-dss\nrules:\n  - id: no-403-noise\n    match: {status: 403}\n    level: none\n")
    result = report("--pack", "pci-dss", "--policy", str(policy), *FLASK_APP, cwd=tmp_path)
    assert result.returncode == 1
    assert "GAPS: 17 events the requirements need are not recorded:" in result.stdout
    assert "  10.2.1.4: GET /admin/users [member 403] -> audit.http.request: rule no-403-noise switches it off" \
        in result.stdout


def test_without_an_app_and_with_bad_input(tmp_path):
    result = report("--pack", "soc2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "app: none given" in result.stdout and "  CC6.3  Access is granted" in result.stdout
    assert "OUT OF SCOPE for an application library:\n  CC7.3-CC7.5" in result.stdout

    unknown = report("--pack", "iso27001", cwd=tmp_path)
    assert unknown.returncode == 2 and "no compliance pack 'iso27001'" in unknown.stderr and "pci-dss" in unknown.stderr
    plain = report("--pack", "hipaa", "--policy", "pack:default", cwd=tmp_path)
    assert plain.returncode == 2 and "does not include pack:hipaa" in plain.stderr and "extends: pack:hipaa" in plain.stderr
    listing = subprocess.run([sys.executable, "-m", "otel_audit.cli", "compliance", "packs"], cwd=tmp_path,
                             env=base_env(), capture_output=True, text=True, timeout=60)
    assert "pack:pci-dss    PCI DSS 4.0.1: 4 covered, 3 partial, 6 out of scope" in listing.stdout
