"""Auditing must not change what a shared cache may keep: the actor is resolved from the session,
and a session read by the app is what makes Flask and Django answer ``Vary: Cookie``. Our reads
are not the app's, so each app is served twice by gunicorn, bare and under the real launcher, and
the ``Vary`` headers are compared request by request. Where the app reads the user, the header
must be there (a page that shows who is signed in must never be shared)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.instrumentation.apps import from_sink, where
from tests.instrumentation.test_django import DJANGO_APP, migrated_example
from tests.support.procs import REPO, Server, base_env, free_port, launcher



def _sink(env: dict[str, str]) -> list:
    lines = Path(env["OTEL_AUDIT_SINK_PATH"]).read_text().splitlines()
    return from_sink(json.loads(line) for line in lines if line.strip())


def _vary(response: requests.Response) -> str:
    return response.headers.get("Vary", "")


@contextmanager
def _served(argv: list[str], env: dict[str, str], ready: str, cwd: Path, log: Path, audited: bool):
    port = free_port()
    command = [*([launcher()] if audited else []), "gunicorn", argv[0], "-b", f"127.0.0.1:{port}", "-w", "1"]
    server = Server(command, env, f"http://127.0.0.1:{port}{ready}", cwd=cwd, log_path=log).wait_ready()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _audit_env(tmp_path: Path, name: str, **extra: str) -> dict[str, str]:
    return base_env(OTEL_AUDIT_QUIET="1", OTEL_AUDIT_POLICY="pack:all-requests",
                    OTEL_AUDIT_SINK_PATH=str(tmp_path / f"{name}.jsonl"),
                    OTEL_AUDIT_SPOOL_DIR=str(tmp_path / f"{name}-spool"), **extra)


def _flask_visits(base_url: str) -> dict[str, str]:
    anonymous, alice = requests.Session(), requests.Session()
    seen = {"anonymous /": _vary(anonymous.get(f"{base_url}/")),
            "anonymous /account": _vary(anonymous.get(f"{base_url}/account"))}
    assert alice.post(f"{base_url}/login", data={"username": "alice"}).status_code == 200
    seen["alice /"] = _vary(alice.get(f"{base_url}/"))
    seen["alice /account"] = _vary(alice.get(f"{base_url}/account"))
    return seen


def test_flask_session_app_keeps_its_cache_headers(tmp_path):
    argv = ["tests.instrumentation.login_app:app"]
    with _served(argv, base_env(), "/", REPO, tmp_path / "bare.log", audited=False) as url:
        bare = _flask_visits(url)
    env = _audit_env(tmp_path, "flask")
    with _served(argv, env, "/", REPO, tmp_path / "audited.log", audited=True) as url:
        audited = _flask_visits(url)

    assert bare["anonymous /"] == bare["alice /"] == "" and "Cookie" in bare["alice /account"]  # the app's own
    # Signed in or not: exactly the app's headers (the public page stays cacheable, the page that
    # shows who is signed in keeps Vary: Cookie).
    assert audited == bare
    records = _sink(env)
    (alice_home,) = where(records, url__path="/", enduser__id="1")
    assert alice_home.get("http.response.status_code") == 200
    assert [r.get("audit.actor.type") for r in where(records, url__path="/") if r.get("enduser.id") is None] == [
        "anonymous", "anonymous"]  # the readiness probe and the anonymous visit


def _django_visits(base_url: str) -> dict[str, str]:
    from examples.django_app.traffic import HttpClient, login

    anonymous = HttpClient(base_url)
    seen = {"anonymous /health/": _vary(anonymous.get("/health/")),
            "anonymous /notes/": _vary(anonymous.get("/notes/"))}
    bob, status = login(lambda: HttpClient(base_url), "bob", "bob-pw")
    assert status == 302
    seen["bob /health/"] = _vary(bob.get("/health/"))
    seen["bob /notes/"] = _vary(bob.get("/notes/"))
    return seen


def test_django_app_keeps_its_cache_headers(tmp_path):
    app_env = migrated_example(tmp_path)
    argv = ["notesite.wsgi:application"]
    with _served(argv, base_env(**app_env), "/health/", DJANGO_APP, tmp_path / "bare.log", audited=False) as url:
        bare = _django_visits(url)
    env = _audit_env(tmp_path, "django", **app_env)
    with _served(argv, env, "/health/", DJANGO_APP, tmp_path / "audited.log", audited=True) as url:
        audited = _django_visits(url)

    assert bare["anonymous /health/"] == "" and "Cookie" in bare["bob /notes/"]  # what the app itself says
    # Every request, signed in or not: exactly the app's own Vary (request.user is handed to the
    # view as loaded, and marks the session read only when the view uses it, as Django's would).
    assert audited == bare
    records = _sink(env)
    bob_health = [r for r in where(records, url__path="/health/") if r.get("enduser.id") == "2"]
    assert len(bob_health) == 1 and bob_health[0].get("http.response.status_code") == 200
    (bob_notes,) = [r for r in where(records, url__path="/notes/") if r.get("enduser.id") == "2"]
    assert bob_notes.get("http.response.status_code") == 200
