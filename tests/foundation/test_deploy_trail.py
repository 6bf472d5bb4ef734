"""The audit system's own changes are on the trail (PCI DSS 10.2.1.6): the ``start`` record says
which code (service version, VCS revision and repository), environment and policy are running,
and a process that starts with something else than the previous one on the same spool directory
records ``configuration.deploy`` / ``configuration.policy_change`` from what to what."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.procs import base_env

START = "from otel_audit import runtime; runtime.start(); runtime.flush()"


def _start(tmp_path: Path, version: str, revision: str | None = None, policy: str | None = None,
           environment: str = "prod", **env: str) -> None:  # fmt: skip
    """One process: ``runtime.start()`` with this deploy, then a clean exit."""
    extra = {"OTEL_AUDIT_VCS_REVISION": revision} if revision else {}
    if policy:
        extra["OTEL_AUDIT_POLICY"] = policy
    done = subprocess.run(
        [sys.executable, "-c", START],
        env=base_env(**{
            "OTEL_AUDIT_SPOOL_DIR": str(tmp_path / "spool"), "OTEL_AUDIT_SINK_PATH": str(tmp_path / "audit.jsonl"),
            "OTEL_AUDIT_QUIET": "true", "OTEL_SERVICE_NAME": "shop",
            "OTEL_RESOURCE_ATTRIBUTES": f"service.version={version},deployment.environment.name={environment}",
            "OTEL_AUDIT_VCS_REPOSITORY": "https://git.example.com/shop.git", **extra, **env,
        }),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _records(tmp_path: Path) -> list[tuple[str, dict]]:
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    return [(record["event_name"], record["attributes"]) for record in map(json.loads, lines)]


def _named(records: list[tuple[str, dict]], name: str) -> list[dict]:
    return [attributes for event_name, attributes in records if event_name == name]


def test_start_record_says_what_code_environment_and_policy_run(tmp_path: Path) -> None:
    _start(tmp_path, "1.4.0", revision="3f2a91c0d4e5")
    [start] = _named(_records(tmp_path), "audit.audit_system.start")
    assert start["service.version"] == "1.4.0"
    assert start["vcs.ref.head.revision"] == "3f2a91c0d4e5"
    assert start["vcs.repository.url.full"] == "https://git.example.com/shop.git"
    assert start["deployment.environment.name"] == "prod"
    assert start["audit.policy.id"] == "otel-audit-default" and start["audit.policy.hash"].startswith("sha256:")


def test_resource_vcs_attributes_win_over_the_variables(tmp_path: Path) -> None:
    _start(tmp_path, "1.4.0", revision="from-variable",
           OTEL_RESOURCE_ATTRIBUTES="service.version=1.4.0,vcs.ref.head.revision=from-resource")  # fmt: skip
    [start] = _named(_records(tmp_path), "audit.audit_system.start")
    assert start["vcs.ref.head.revision"] == "from-resource"


def test_a_deploy_is_recorded_from_what_to_what_and_only_when_something_changed(tmp_path: Path) -> None:
    _start(tmp_path, "1.4.0", revision="aaa111")
    _start(tmp_path, "1.4.0", revision="aaa111")  # a restart of the same deploy: nothing to say
    records = _records(tmp_path)
    assert len(_named(records, "audit.audit_system.start")) == 2
    assert not _named(records, "audit.configuration.deploy") and not _named(records, "audit.configuration.policy_change")

    _start(tmp_path, "1.5.0", revision="bbb222")
    [deploy] = _named(_records(tmp_path), "audit.configuration.deploy")
    assert deploy["audit.changes.fields"] == ["service.version", "vcs.ref.head.revision"]
    assert (deploy["audit.previous.service.version"], deploy["service.version"]) == ("1.4.0", "1.5.0")
    assert (deploy["audit.previous.vcs.ref.head.revision"], deploy["vcs.ref.head.revision"]) == ("aaa111", "bbb222")
    assert deploy["audit.outcome"] == "success" and deploy["audit.actor.type"] == "system"
    assert "audit.previous.process.pid" in deploy
    assert not _named(_records(tmp_path), "audit.configuration.policy_change")


def test_an_environment_change_is_a_deploy_too(tmp_path: Path) -> None:
    _start(tmp_path, "1.4.0", environment="staging")
    _start(tmp_path, "1.4.0", environment="prod")
    [deploy] = _named(_records(tmp_path), "audit.configuration.deploy")
    assert deploy["audit.changes.fields"] == ["deployment.environment.name"]
    assert (deploy["audit.previous.deployment.environment.name"], deploy["deployment.environment.name"]) == ("staging", "prod")


def test_a_policy_change_is_recorded_with_both_hashes(tmp_path: Path) -> None:
    first = "id: shop\nversion: '1'\ndefaults: {level: metadata}\n"
    second = "id: shop\nversion: '2'\ndefaults: {level: request}\n"
    _start(tmp_path, "1.4.0", policy=first)
    _start(tmp_path, "1.4.0", policy=second)
    records = _records(tmp_path)
    [change] = _named(records, "audit.configuration.policy_change")
    assert change["audit.changes.fields"] == ["audit.policy.version", "audit.policy.hash"]
    assert (change["audit.previous.audit.policy.version"], change["audit.policy.version"]) == ("1", "2")
    starts = _named(records, "audit.audit_system.start")
    assert change["audit.previous.audit.policy.hash"] == starts[0]["audit.policy.hash"] != starts[1]["audit.policy.hash"]
    assert not _named(records, "audit.configuration.deploy")
