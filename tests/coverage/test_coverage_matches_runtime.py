"""Coverage lists each route as the adapter records it: one request per listed route through the
real adapter (the ``audit_trail`` fixture's production runtime), and the ``http.route`` of the
records must be exactly the templates coverage judged. Otherwise a rule or ``critical:`` entry
written against coverage's list would not be what the runtime matches."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import flask  # noqa: F401 - imported before audit_trail starts, so its 'auto' instruments Flask...
import pytest
import starlette.applications  # noqa: F401 - ...and Starlette

from otel_audit.coverage import inventory

SHAPES = Path(__file__).parent / "shapes"


def _sample_path(template: str) -> str:
    """A concrete path for a route template (Flask <conv:name>, Starlette {name[:conv]})."""
    path = re.sub(r"<(?:int:)?[^>]*>|\{[^}]*\}", "1", template)
    return path


def _fresh(module: str):
    sys.path.insert(0, str(SHAPES))
    sys.modules.pop(module, None)
    return importlib.import_module(module)


@pytest.mark.audit_policy("pack:all-requests")  # every route's request is recorded, GETs included
def test_flask_blueprint_routes_are_recorded_as_coverage_lists_them(audit_trail) -> None:
    app = _fresh("flask_shapes").app
    listed = {(r.method, r.route, r.host) for r in inventory("flask_shapes:app", str(SHAPES)).routes
              if not r.route.startswith("/static")}
    client = app.test_client()
    for method, route, host in sorted(listed):
        base = f"http://{host + '.' if host else ''}shop.test"
        client.open(_sample_path(route), method=method, base_url=base)
    recorded = {(r["attributes"]["http.request.method"], r["attributes"].get("http.route")) for r in audit_trail.records}
    assert recorded == {(method, route) for method, route, _host in listed}


@pytest.mark.audit_policy("pack:all-requests")
def test_fastapi_included_and_mounted_routes_are_recorded_as_coverage_lists_them(audit_trail) -> None:
    from starlette.testclient import TestClient

    app = _fresh("fastapi_shapes").app
    listed = {(r.method, r.route) for r in inventory("fastapi_shapes:app", str(SHAPES)).routes
              if r.route.startswith(("/api/", "/legacy/"))}
    client = TestClient(app)
    for method, route in sorted(listed):
        client.request(method, _sample_path(route))
    records = [(r["attributes"]["http.request.method"], r["attributes"].get("http.route")) for r in audit_trail.records]
    assert sorted(records) == sorted(listed)  # each once, with its full template


DJANGO_DRIVER = """
import json, os, sys, tempfile
from pathlib import Path
os.environ["DJANGO_SETTINGS_MODULE"] = "djshapes.settings"
import django
from otel_audit.testing.trail import AuditTrail
trail = AuditTrail(policy="pack:all-requests", workdir=Path(tempfile.mkdtemp()), instrument=["django"])
trail.start()
django.setup()
from django.test import Client
client = Client()
for method, path in json.loads(sys.argv[1]):
    getattr(client, method.lower())(path)
print(json.dumps([(r["attributes"]["http.request.method"], r["attributes"].get("http.route")) for r in trail.records]))
trail.stop()
"""


def test_django_include_namespaces_and_re_path_are_recorded_as_coverage_lists_them(tmp_path: Path) -> None:
    """Django runs in its own process (its settings are global): coverage's list, then one request each."""
    import json
    import subprocess

    from tests.support.procs import REPO, base_env

    env = base_env()
    env["PYTHONPATH"] = f"{SHAPES}:{env['PYTHONPATH']}"
    listed = json.loads(subprocess.run([sys.executable, "-m", "otel_audit.cli", "coverage", "--app", "djshapes.settings",
                                        "--format", "json"], cwd=SHAPES, env=env, capture_output=True, text=True,
                                       timeout=120, check=True).stdout)["routes"]
    samples = {"/": "/", "/api/v1/billing/invoices/<int:pk>/": "/api/v1/billing/invoices/3/",
               "/api/v1/billing/reports/(?P<year>[0-9]{4})/$": "/api/v1/billing/reports/2024/"}
    assert {r["route"] for r in listed} == set(samples)
    requests = [(r["method"], samples[r["route"]]) for r in listed]
    driven = subprocess.run([sys.executable, "-c", DJANGO_DRIVER, json.dumps(requests)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert driven.returncode == 0, driven.stderr[-2000:]
    recorded = json.loads(driven.stdout.strip().splitlines()[-1])
    assert sorted(map(tuple, recorded)) == sorted((r["method"], r["route"]) for r in listed)
