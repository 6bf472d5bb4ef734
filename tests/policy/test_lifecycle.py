"""Provenance on every record; lifecycle records; a broken policy falls back (or refuses to start)."""

from __future__ import annotations

import pytest

import otel_audit
from otel_audit import runtime
from otel_audit.errors import OtelAuditError
from otel_audit.policy import FALLBACK_ID, PolicyError, load_policy

POLICY = """\
id: shop
version: "2024.3"
rules:
  - {id: deletes, match: {action: "delete_*"}, level: full}
"""


def test_every_record_carries_policy_provenance(audit) -> None:
    path = audit.write_policy(POLICY)
    audit.start(path)
    otel_audit.record("data_modification", "delete_resource")
    otel_audit.record("authorization", "grant_role")
    runtime.reset_for_tests()  # emits the stop record
    records = audit.all_records()
    expected_hash = load_policy(path, environ={}).hash
    names = [r["event_name"] for r in records]
    assert names == ["audit.audit_system.start", "audit.audit_system.policy_loaded",
                     "audit.data_modification.delete_resource", "audit.authorization.grant_role",
                     "audit.audit_system.stop"]
    for record in records:
        assert record["attributes"]["audit.policy.id"] == "shop"
        assert record["attributes"]["audit.policy.version"] == "2024.3"
        assert record["attributes"]["audit.policy.hash"] == expected_hash
    assert records[2]["attributes"]["audit.rule"] == "deletes"


def test_hash_is_over_the_normalised_policy(audit) -> None:
    compact = load_policy('{"id": "a", "rules": [{"match": {"method": "delete"}, "level": "full"}]}', environ={})
    spelled_out = load_policy("id: a\nrules:\n  - match: {method: [DELETE]}\n    level: full\n", environ={})
    different = load_policy("id: a\nrules:\n  - match: {method: [DELETE]}\n    level: request\n", environ={})
    assert compact.hash == spelled_out.hash != different.hash
    assert compact.hash.startswith("sha256:") and len(compact.hash) == 7 + 64


def test_audit_system_records_cannot_be_switched_off(audit) -> None:
    audit.start("defaults: {level: none}\nrules: [{match: {category: audit_system}, level: none}]\n")
    otel_audit.record("data_access", "export")
    runtime.reset_for_tests()
    names = [r["event_name"] for r in audit.all_records()]
    assert names == ["audit.audit_system.start", "audit.audit_system.policy_loaded", "audit.audit_system.stop"]


def test_broken_policy_falls_back_loudly_and_records_policy_invalid(audit, capsys) -> None:
    path = audit.write_policy("rules:\n  - match: {action: x}\n    level: verbose\n")
    rt = audit.start(path)
    assert rt.policy.id == FALLBACK_ID
    err = capsys.readouterr().err
    assert "the audit policy is invalid" in err and "FALLING BACK" in err
    assert f"rules[0].level: 'verbose' is not one of none, metadata, request, full ({path}:3:12)" in err
    otel_audit.record("data_modification", "delete_resource")
    records = audit.all_records()
    [invalid] = [r for r in records if r["event_name"] == "audit.audit_system.policy_invalid"]
    assert invalid["attributes"]["audit.outcome"] == "failure"
    assert "rules[0].level" in invalid["attributes"]["audit.outcome.reason"]
    assert invalid["attributes"]["audit.policy.errors"][0].endswith(f"({path}:3:12)")
    # everything is still audited, at metadata level, under the fallback's provenance
    [event] = [r for r in records if r["event_name"] == "audit.data_modification.delete_resource"]
    assert event["attributes"]["audit.level"] == "metadata"
    assert {r["attributes"]["audit.policy.id"] for r in records} == {FALLBACK_ID}


@pytest.mark.parametrize("how", ["env", "policy", "policy_env"])
def test_broken_policy_refuses_to_start_when_fail_closed(audit, capsys, how) -> None:
    text = "failure_mode: closed\nrules: [{level: loud}]\n" if how == "policy" else "rules: [{level: loud}]\n"
    env = {"env": {"OTEL_AUDIT_FAIL_MODE": "closed"}, "policy": {},
           "policy_env": {"OTEL_AUDIT_POLICY_FAIL_MODE": "closed"}}[how]
    with pytest.raises(PolicyError) as caught:
        audit.start(audit.write_policy(text), **env)
    assert isinstance(caught.value, OtelAuditError)
    assert "'loud' is not one of none, metadata, request, full" in str(caught.value)
    assert "refusing to start" in capsys.readouterr().err
    assert runtime._runtime is None  # noqa: SLF001 - nothing half-started


def test_policy_failure_mode_closed_makes_the_runtime_fail_closed(audit) -> None:
    rt = audit.start("failure_mode: closed\n")
    assert rt.config.fail_mode == "closed"


def test_invalid_env_override_is_reported_with_the_variable_name(audit, capsys) -> None:
    rt = audit.start("id: x\n", OTEL_AUDIT_POLICY_DEFAULT_LEVEL="verbose")
    assert rt.policy.id == FALLBACK_ID
    assert ("defaults.level: 'verbose' is not one of none, metadata, request, full "
            "(OTEL_AUDIT_POLICY_DEFAULT_LEVEL)") in capsys.readouterr().err


def test_policy_sources_file_inline_json_and_pack(audit) -> None:
    path = audit.write_policy('{"id": "from-json", "defaults": {"level": "request"}}', "p.json")
    assert load_policy(path, environ={}).id == "from-json"
    assert load_policy('{"id": "inline-json"}', environ={}).id == "inline-json"
    assert load_policy("id: inline-yaml\n", environ={}).id == "inline-yaml"
    assert load_policy("pack:default", environ={}).id == "otel-audit-default"
    assert load_policy(None, environ={}).id == "otel-audit-default"
    unnamed = audit.write_policy("defaults: {level: full}\n", "payments-policy.yaml")
    assert load_policy(unnamed, environ={}).id == "payments-policy"
    with pytest.raises(PolicyError, match=r"policy file 'nope\.yaml' does not exist"):
        load_policy("nope.yaml", environ={})


def test_extends_puts_own_rules_first_and_merges_sections(audit, tmp_path) -> None:
    (tmp_path / "base.yaml").write_text("""
id: base
actors: {admin_roles: [ops]}
required_fields: {admin: [enduser.id]}
rules:
  - {id: base-deletes, match: {action: "delete_*"}, level: metadata}
  - {id: base-exports, match: {action: export}, level: full}
""")
    child = audit.write_policy("""
id: child
extends: base.yaml
required_fields: {admin: [audit.ticket]}
rules:
  - {id: child-deletes, match: {action: "delete_*"}, level: full}
""", "child.yaml")
    policy = load_policy(child, environ={})
    assert policy.id == "child"
    assert [r.id for r in policy.model.rules][:3] == ["child-deletes", "base-deletes", "base-exports"]
    assert [r.id for r in policy.model.rules][3:] == [r.id for r in load_policy(None).model.rules]  # the default pack's rules come last
    assert policy.model.actors.admin_roles == ("ops",)
    assert policy.required_fields["admin"] == ("enduser.id", "audit.ticket")
    assert [r.id for r in policy.model.routes][0] == "builtin.login"  # base extends the default pack
    no_builtins = audit.write_policy("extends: []\n", "bare.yaml")
    assert load_policy(no_builtins, environ={}).model.routes == ()
