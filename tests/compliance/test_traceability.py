"""The traceability data cannot drift from the packs and the tests: every rule it names exists in
its pack, every rule of a pack is traced, every tag names a requirement, every test it cites
exists, and malformed data is refused with the path of the problem."""

from __future__ import annotations

import ast

import pytest

from otel_audit.compliance import TraceabilityError, load_traceability, parse_traceability, traced_packs
from otel_audit.policy import load_policy
from otel_audit.policy.source import pack_names
from tests.support.procs import REPO

PACKS = ("pci-dss", "soc2", "hipaa", "gdpr")


def test_every_compliance_pack_is_traced_and_loadable_by_name():
    assert set(PACKS) <= set(traced_packs())
    assert set(PACKS) <= set(pack_names())
    for pack in PACKS:
        assert load_policy(f"pack:{pack}").id == pack


@pytest.mark.parametrize("pack", PACKS)
def test_rules_and_tags_match_the_pack(pack):
    trace = load_traceability(pack)
    policy = load_policy(f"pack:{pack}")
    own_rules = {rule.rule.id: rule.rule for rule in policy.rules if rule.rule.id.startswith(f"{pack}.")}
    requirement_ids = {requirement.id for requirement in trace.requirements}
    listed = {rule for requirement in trace.requirements for rule in requirement.rules}
    assert listed <= set(own_rules), f"traced rules missing from pack:{pack}: {sorted(listed - set(own_rules))}"
    for rule_id, rule in own_rules.items():
        requirement_tags = [tag for tag in rule.tags if tag.startswith(trace.tag_prefix)]
        assert requirement_tags, f"{rule_id} carries no {trace.tag_prefix}<requirement> tag"
        for tag in requirement_tags:
            assert tag[len(trace.tag_prefix):] in requirement_ids, f"{rule_id}: tag {tag} names no requirement"
        assert rule_id in listed or any(tag[len(trace.tag_prefix):] in requirement_ids for tag in requirement_tags)


def _defined_tests(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {f"{node.name}::{item.name}" for item in node.body if isinstance(item, ast.FunctionDef)}
    return names


@pytest.mark.parametrize("pack", PACKS)
def test_every_cited_test_exists(pack):
    trace = load_traceability(pack)
    assert trace.all_tests()
    for node_id in trace.all_tests():
        path, _, name = node_id.partition("::")
        file = REPO / path
        assert file.is_file(), f"{pack}: {node_id}: no file {path}"
        assert name in _defined_tests(file), f"{pack}: {node_id}: no test {name} in {path}"
        assert name.startswith("test_")


@pytest.mark.parametrize("pack", PACKS)
def test_in_scope_requirements_have_evidence_and_out_of_scope_ones_a_reason(pack):
    for requirement in load_traceability(pack).requirements:
        if requirement.in_scope:
            assert requirement.tests and (requirement.rules or requirement.mechanisms), requirement.id
        else:
            assert requirement.reason and not requirement.tests, requirement.id


def test_pci_dss_traces_each_10_2_1_item():
    trace = load_traceability("pci-dss")
    in_scope = {r.id: r.status for r in trace.requirements if r.in_scope}
    assert in_scope == {"10.2.1.1": "covered", "10.2.1.2": "covered", "10.2.1.3": "partial", "10.2.1.4": "covered",
                        "10.2.1.5": "covered", "10.2.1.6": "partial", "10.2.1.7": "partial"}
    assert {"10.4", "10.5.1", "10.6", "10.7"} <= {r.id for r in trace.requirements if not r.in_scope}
    assert [d.name for d in trace.details][:2] == ["user identification", "type of event"]


def test_malformed_traceability_names_the_problem():
    base = {"pack": "x", "standard": "X", "standard_version": "1", "tag_prefix": "x:"}
    with pytest.raises(TraceabilityError) as error:
        parse_traceability({**base, "requirements": [{"id": "1", "title": "t", "status": "done"}]}, "x.yaml")
    assert "x.yaml: requirements/0/status" in str(error.value) and "'done'" in str(error.value)
    with pytest.raises(TraceabilityError) as error:
        parse_traceability({**base, "requirements": [{"id": "1", "title": "t", "status": "out_of_scope"}]}, "x.yaml")
    assert "requirements/0 (1): out_of_scope needs a reason" in str(error.value)
    with pytest.raises(TraceabilityError) as error:
        parse_traceability({**base, "requirements": [{"id": "1", "title": "t", "status": "covered",
                                                      "rules": ["r"], "tests": ["test_x.py::test_y"]}]}, "x.yaml")
    assert "requirements/0/tests/0" in str(error.value)
    with pytest.raises(TraceabilityError, match="no compliance pack 'nope'.*pci-dss"):
        load_traceability("nope")
