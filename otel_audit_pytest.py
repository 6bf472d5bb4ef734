"""otel-audit's pytest plugin (entry point ``pytest11: otel_audit``): the ``audit_trail`` fixture.

It lives outside the ``otel_audit`` package on purpose: loading it imports nothing of otel-audit,
so a broken or partial install of the package can never stop a pytest run (the ``audit_trail``
fixture then fails the tests that ask for it, naming the cause, and the run header says why).
Importing it declares one fixture, one marker and two ini options; no runtime is started, no
framework imported, no environment touched until a test asks for ``audit_trail``. Policy
precedence: ``@pytest.mark.audit_policy(...)`` > ini ``audit_policy`` > ``OTEL_AUDIT_POLICY`` >
the built-in default.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Iterator

import pytest


def _package_problem() -> str | None:
    """Why ``otel_audit.testing.trail`` cannot be found, without importing it (None: it can)."""
    try:
        found = importlib.util.find_spec("otel_audit.testing.trail") is not None
    except ModuleNotFoundError as exc:  # a parent package is missing
        return f"otel-audit is partly installed ({exc})"
    except Exception as exc:  # the package itself fails to import (a broken install)
        return f"importing otel_audit failed ({type(exc).__name__}: {exc})"
    return None if found else "otel-audit is partly installed (no module otel_audit.testing.trail)"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("audit_policy", "otel-audit policy for the audit_trail fixture: a file (relative to the ini file), "
                  "inline YAML or pack:NAME", default=None)
    parser.addini("audit_instrument", "otel-audit adapters the audit_trail fixture instruments for each test "
                  "(flask, fastapi, django, sqlalchemy, sqlite3, psycopg, logging), 'auto' for every installed "
                  "one, or 'none'", type="args", default=["auto"])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "audit_policy(source): the otel-audit policy for this test's audit_trail (file path relative to the "
        "test file, inline YAML/JSON, or pack:NAME)",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Only when something is wrong: a broken install is named once at the top of the run."""
    problem = _package_problem()
    return [f"otel-audit: the audit_trail fixture is unavailable: {problem}"] if problem else []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using ``audit_trail`` set it up before their other function fixtures, so apps and
    clients those fixtures build are created with the adapters already in place."""
    for item in items:
        names = getattr(item, "fixturenames", None)
        if isinstance(names, list) and "audit_trail" in names and names[0] != "audit_trail":
            names.remove("audit_trail")
            names.insert(0, "audit_trail")


@pytest.fixture
def audit_trail(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh otel-audit runtime for this test whose exporter keeps records in memory.

    ``audit_trail.records`` are exactly the records that would be exported (after policy,
    redaction, hash chain and spool). Assertions: ``assert_audited``, ``assert_not_audited``,
    ``assert_no_secrets``, ``assert_schema``. The previous runtime and environment come back after
    the test.
    """
    try:
        from otel_audit.testing.trail import AuditTrail, policy_source_for
    except Exception as exc:
        pytest.fail(f"audit_trail: otel-audit cannot be imported ({type(exc).__name__}: {exc})", pytrace=False)
    try:
        source = policy_source_for(request)
    except (FileNotFoundError, ValueError) as exc:
        pytest.fail(f"audit_trail: {exc}", pytrace=False)
    workdir = tmp_path_factory.mktemp("otel-audit")
    trail = AuditTrail(policy=source, workdir=workdir, instrument=request.config.getini("audit_instrument"))
    trail.start()
    try:
        yield trail
    finally:
        trail.stop()


@pytest.fixture
def attacks() -> Any:
    """The simulated-attack stories (:mod:`otel_audit.testing.attacks`): drive your app's client
    through ``brute_force``, ``spray``, ``escalate_privilege``, ``mass_delete`` … and check with
    ``audit_trail.assert_detects(rule)``; ``benign_session`` must leave ``assert_no_detections()``."""
    try:
        from otel_audit.testing import attacks as stories
    except Exception as exc:
        pytest.fail(f"attacks: otel-audit cannot be imported ({type(exc).__name__}: {exc})", pytrace=False)
    return stories
