"""Each example app's attack stories, driven over HTTP against the app served under the real
launcher (otel_audit.demo.serve_example), each story's records cut from the sink by time."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx

from otel_audit.testing import attacks
from otel_audit.testing.attacks import Login, Request, StoryClient


@dataclass(frozen=True)
class AppStories:
    """One example's routes and users, as the stories need them."""

    login: Login
    admin: tuple[str, str]
    member: tuple[str, str]
    grant_admin: Request  # the admin grants an administrative role
    grant_ordinary: Request  # the admin grants an ordinary role (an admin action, not an escalation)
    self_grant: Request  # the admin grants an ordinary role to their own account
    create: Request
    delete: Request
    probes: tuple[Request, ...]  # what the member may not do
    read: Request | None = None
    # The route a team records reads of (docs/detections.md: reads are quiet by default); the
    # mass-read story runs on the example's policy extended with it. None: the example records it.
    read_route: str | None = None
    work: tuple[Request, ...] = field(default=())


APPS = {
    "flask": AppStories(
        login=Login("/login"), admin=("bob", "battery staple"), member=("alice", "correct horse"),
        grant_admin=Request("POST", "/admin/users/carol/role", json={"role": "admin"}),
        grant_ordinary=Request("POST", "/admin/users/carol/role", json={"role": "editor"}),
        self_grant=Request("POST", "/admin/users/bob/role", json={"role": "auditor"}),  # by username
        create=Request("POST", "/notes", json={"title": "t", "body": "b"}), delete=Request("DELETE", "/notes/{id}"),
        probes=(Request("GET", "/admin/users"), Request("POST", "/admin/users/carol/role", json={"role": "admin"}),
                Request("GET", "/admin/export")),
        read=Request("GET", "/admin/export"),
        work=(Request("POST", "/notes", json={"title": "plan", "body": "draft"}),
              Request("PUT", "/notes/{id}", json={"title": "plan v2"}), Request("GET", "/notes/{id}"),
              Request("DELETE", "/notes/{id}"))),
    "django": AppStories(
        login=Login("/accounts/login/", prime="/accounts/login/"), admin=("alice", "alice-pw"), member=("bob", "bob-pw"),
        grant_admin=Request("POST", "/staff/users/3/promote/", data={}),
        grant_ordinary=Request("POST", "/staff/users/3/groups/", data={"group": "editors"}),
        self_grant=Request("POST", "/staff/users/1/groups/", data={"group": "editors"}),  # alice's pk
        create=Request("POST", "/notes/", data={"title": "t", "body": "b"}), delete=Request("POST", "/notes/{id}/delete/", data={}),
        probes=(Request("POST", "/staff/users/3/groups/", data={"group": "editors"}),
                Request("POST", "/staff/users/3/promote/", data={})),
        read=Request("GET", "/notes/"), read_route="GET /notes/",
        work=(Request("POST", "/notes/", data={"title": "plan", "body": "draft"}),
              Request("POST", "/notes/{id}/", data={"title": "plan", "body": "final"}),
              Request("POST", "/notes/{id}/delete/", data={}))),
    "fastapi": AppStories(
        login=Login("/token", as_json=True, token_field="access_token"), admin=("alice", "alice-pw"),
        member=("bob", "bob-pw"),
        grant_admin=Request("POST", "/admin/users/2/roles", json={"role": "admin"}),
        grant_ordinary=Request("POST", "/admin/users/2/roles", json={"role": "editor"}),
        self_grant=Request("POST", "/admin/users/1/roles", json={"role": "auditor"}),  # alice's id
        create=Request("POST", "/notes", json={"title": "t", "body": "b"}), delete=Request("DELETE", "/notes/{id}"),
        probes=(Request("POST", "/admin/users/1/roles", json={"role": "admin"}),),
        read=Request("GET", "/notes"), read_route="GET /notes",
        work=(Request("POST", "/notes", json={"title": "plan", "body": "draft"}),
              Request("PUT", "/notes/{id}", json={"title": "plan", "body": "final"}), Request("DELETE", "/notes/{id}"))),
}

SPRAYED = ("alice", "bob", "carol", "dave", "erin", "frank")


def client(base_url: str, address: str = "127.0.0.1") -> StoryClient:
    """A fresh user agent, connecting from ``address`` (any 127.0.0.0/8 address reaches the app)."""
    transport = httpx.HTTPTransport(local_address=address)
    return StoryClient(httpx.Client(base_url=base_url, transport=transport, timeout=15))


def stories(app: AppStories) -> dict[str, tuple[str | None, Callable[[str], Any]]]:
    """story -> (the rule it must make fire, None for the benign one; how to play it on a base URL)."""
    admin, member = app.admin, app.member
    plays: dict[str, tuple[str | None, Callable[[str], Any]]] = {
        "benign": (None, lambda url: attacks.benign_session(client(url), app.login, *member, work=app.work)),
        "brute_force": ("otel_audit_brute_force", lambda url: attacks.brute_force(client(url), app.login, member[0])),
        "spray": ("otel_audit_password_spray", lambda url: attacks.spray(client(url), app.login, SPRAYED)),
        "guess_then_login": ("otel_audit_login_after_failures",
                             lambda url: attacks.guess_then_login(client(url), app.login, *member)),
        "mass_delete": ("otel_audit_mass_deletion",
                        lambda url: attacks.mass_delete(client(url), app.login, *member, app.create, app.delete)),
        "probe_denied": ("otel_audit_access_denied_burst",
                         lambda url: attacks.probe_denied(client(url), app.login, *member, app.probes, rounds=12)),
        "admin_from_new_source": ("otel_audit_admin_new_source", lambda url: attacks.admin_from_new_source(
            client(url), client(url, "127.0.0.2"), app.login, *admin, app.grant_ordinary)),
    }
    if app.read is not None:
        plays["mass_read"] = ("otel_audit_mass_read",
                              lambda url: attacks.mass_read(client(url), app.login, *admin, app.read))
    # last: it makes a member an admin, and the stories above need the member to stay one
    plays["escalate_privilege"] = ("otel_audit_privilege_escalation",
                                   lambda url: attacks.escalate_privilege(client(url), app.login, *admin, app.grant_admin))
    # after it: Flask's role column holds one role, so the admin granting themselves one is no admin after
    plays["self_grant"] = ("otel_audit_self_granted_privilege",
                           lambda url: attacks.self_grant(client(url), app.login, *admin, app.self_grant))
    return plays


def reads_recorded(name: str, workdir: Path) -> str:
    """The example's policy plus the read route classified as a data read (so it is recorded)."""
    from otel_audit.demo import EXAMPLES

    policy = workdir / "policy-with-reads.yaml"
    policy.write_text(json.dumps({"format": 1, "id": f"{name}-with-reads", "extends": [str(EXAMPLES[name].policy())],
                                  "routes": [{"id": "note-reads", "request": APPS[name].read_route,
                                              "category": "data_access", "action": "read_resource"}]}))
    return str(policy)


def in_zone(name: str, workdir: Path, zone: str) -> str:
    """The example's policy with ``local_time.zone`` set: its records' local hour is read there."""
    from otel_audit.demo import EXAMPLES

    policy = workdir / "policy-in-zone.yaml"
    policy.write_text(json.dumps({"format": 1, "id": f"{name}-in-zone", "extends": [str(EXAMPLES[name].policy())],
                                  "local_time": {"zone": zone}}))
    return str(policy)


def play_in_zone(name: str, workdir: Path, zone: str, story: str = "escalate_privilege") -> Path:
    """Serve the example with its policy in ``zone``, play one story, return that story's trail."""
    workdir.mkdir(parents=True)
    plays = {story: stories(APPS[name])[story]}
    return _play_on_one_server(name, workdir, plays, policy=in_zone(name, workdir, zone))[story]


def play_all(name: str, workdir: Path) -> dict[str, Path]:
    """Serve the example once, play every story, and write each story's records (cut by time)
    to its own trail file; returns story -> trail file. A mass-read story that needs reads
    recorded plays on a second server with :func:`reads_recorded`'s policy."""
    plays = stories(APPS[name])
    separate = {"mass_read": plays.pop("mass_read")} if APPS[name].read_route and "mass_read" in plays else {}
    trails = _play_on_one_server(name, workdir / "own-policy", plays)
    if separate:
        (workdir / "reads").mkdir()
        trails.update(_play_on_one_server(name, workdir / "reads", separate,
                                          policy=reads_recorded(name, workdir / "reads")))
    return trails


def _play_on_one_server(name: str, workdir: Path, plays: dict[str, tuple[str | None, Callable[[str], Any]]],
                        policy: str | None = None) -> dict[str, Path]:
    from otel_audit.demo import read_trail, serve_example

    workdir.mkdir(exist_ok=True)
    sink = workdir / "audit.jsonl"
    starts: dict[str, int] = {}
    with serve_example(name, sink, workdir, policy=policy) as base_url:
        for story, (_, play) in plays.items():
            starts[story] = time.time_ns()
            play(base_url)
            time.sleep(0.3)  # a record is stamped when its request finishes, just after the client has the answer
    records = read_trail(sink, timeout=20)
    trails = {}
    ends = list(starts.values())[1:] + [time.time_ns()]
    lifecycle = [r for r in records if r["event_name"].startswith("audit.audit_system.")]
    for (story, start), end in zip(starts.items(), ends):
        chosen = [r for r in records if start <= r["time_unix_nano"] < end and r not in lifecycle]
        if story == "benign":  # an ordinary process life: start, policy loaded, checkpoints, stop
            chosen = sorted(chosen + lifecycle, key=lambda r: r["time_unix_nano"])
        path = workdir / f"{story}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in chosen))
        trails[story] = path
    return trails
