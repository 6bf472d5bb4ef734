"""``otel-audit policy lint`` (and its warnings in ``validate``) through the real entry point: the
shipped packs and examples are clean, a hand-made policy with one mistake of each kind gets exactly
those findings, and with ``--app`` rules that no route or table of the app can reach are named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otel_audit.policy.source import pack_names
from tests.support.procs import REPO, base_env

SHAPES = REPO / "tests" / "coverage" / "shapes"

MISTAKES = """\
rules:
  - id: admin-area
    match: {path: "/admin/*"}
    level: request
  - id: admin-deletes              # behind admin-area: never reached
    match: {path: "/admin/users/*", method: DELETE}
    level: full
  - id: typo-action                # no such action anywhere
    match: {action: user_deleted}
    level: full
  - id: wrong-pair                 # a login is never a row deletion
    match: {category: authentication, action: delete_resource}
    level: full
  - id: api-v2                     # the app has no /api/v2
    match: {path: "/api/v2/*"}
    level: full
  - id: restated-default           # same decision as the built-in rule it shadows: fine
    match: {category: data_access, db_operation: SELECT}
    level: none
  - id: item-deletes
    match: {method: DELETE, path: "/api/items/*"}
    level: full
"""


def lint(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otel_audit.cli", "policy", "lint", *args], cwd=REPO,
                          env=base_env(), capture_output=True, text=True, timeout=120)


def findings(stdout: str) -> list[tuple[str, str]]:
    """(code, rule) of each finding line."""
    out = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("[") and "] rule " in line:
            code, _, rest = line[1:].partition("] rule ")
            out.append((code, rest.split(":", 1)[0]))
    return out


@pytest.mark.parametrize("pack", pack_names())
def test_shipped_packs_lint_clean(pack: str) -> None:
    result = lint(f"pack:{pack}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"pack:{pack}: no findings" in result.stdout


@pytest.mark.parametrize("example", ["examples/policies/web-app.yaml", "examples/policies/jwt-api.yaml",
                                     "examples/policies/seed-shorthand.yaml", "examples/flask_app/policy.yaml",
                                     "examples/fastapi_app/tests/policy.yaml"])
def test_example_policies_lint_clean(example: str) -> None:
    result = lint(example)
    assert result.returncode == 0, result.stdout


def test_each_kind_of_mistake_is_found(tmp_path: Path) -> None:
    policy = tmp_path / "mistakes.yaml"
    policy.write_text(MISTAKES)
    result = lint(str(policy))
    assert result.returncode == 1
    assert findings(result.stdout) == [("shadowed", "admin-deletes"), ("unknown-action", "typo-action"),
                                       ("impossible-pair", "wrong-pair")]
    assert "rule admin-deletes: unreachable: rule admin-area comes first" in result.stdout
    assert "category authentication never has action delete_resource" in result.stdout
    # against the app, the glob of a route it does not have too
    result = lint(str(policy), "--app", "flask_shapes:app", "--app-dir", str(SHAPES))
    assert findings(result.stdout) == [("no-route", "admin-area"), ("shadowed", "admin-deletes"),
                                       ("no-route", "admin-deletes"), ("unknown-action", "typo-action"),
                                       ("impossible-pair", "wrong-pair"), ("no-route", "api-v2"),
                                       ("no-event", "restated-default")]  # the app has no tables to read
    assert "path /api/v2/* matches no route template of the app (4 templates)" in result.stdout
    assert ("no-route", "item-deletes") not in findings(result.stdout)  # DELETE /api/items/<int:item_id>


def test_a_rule_no_event_of_the_app_reaches() -> None:
    """The seed's example (admins' deletions) on an app that never deletes anything."""
    seed = str(REPO / "examples" / "policies" / "seed-shorthand.yaml")
    result = lint(seed, "--app", "readonly_app:app", "--app-dir", str(SHAPES))
    assert result.returncode == 1
    assert findings(result.stdout) == [("no-event", "audit_configs[0]")]
    assert "no request to the app's 3 route templates and no change to its 0 tables matches it" in result.stdout
    assert lint(seed, "--app", "flask_shapes:app", "--app-dir", str(SHAPES)).returncode == 0  # it deletes items


def test_rules_inherited_from_a_pack_are_not_judged_against_the_app(tmp_path: Path) -> None:
    policy = tmp_path / "pci.yaml"
    policy.write_text('extends: ["pack:pci-dss"]\nrules:\n  - {id: mine, match: {path: "/nowhere/*"}, level: full}\n')
    result = lint(str(policy), "--app", "readonly_app:app", "--app-dir", str(SHAPES))
    assert findings(result.stdout) == [("no-route", "mine")]  # not pci-dss.cardholder-data-routes


def test_validate_prints_findings_as_warnings_and_stays_ok(tmp_path: Path) -> None:
    policy = tmp_path / "mistakes.yaml"
    policy.write_text(MISTAKES)
    result = subprocess.run([sys.executable, "-m", "otel_audit.cli", "policy", "validate", str(policy)], cwd=REPO,
                            env=base_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "  warning: [unknown-action] rule typo-action: action 'user_deleted' is not in the catalogue" in result.stdout
    assert result.stdout.count("  warning: ") == 3


def test_an_app_that_cannot_load_is_exit_2() -> None:
    result = lint("pack:default", "--app", "no_such_module:app")
    assert result.returncode == 2 and "cannot import 'no_such_module'" in result.stderr
