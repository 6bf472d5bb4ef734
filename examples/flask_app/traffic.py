"""The scripted session the demo drives over HTTP: one story an auditor would ask about."""

from __future__ import annotations

import sys

import requests


def run(base_url: str) -> list[tuple[str, int]]:
    """Play the session; returns (step, status) pairs."""
    results: list[tuple[str, int]] = []
    alice = requests.Session()
    bob = requests.Session()

    def step(name: str, response: requests.Response) -> None:
        results.append((name, response.status_code))

    step("anonymous visit", alice.get(f"{base_url}/"))
    step("alice: wrong password", alice.post(f"{base_url}/login", data={"username": "alice", "password": "hunter2"}, allow_redirects=False))
    step("alice: login", alice.post(f"{base_url}/login", data={"username": "alice", "password": "correct horse"}, allow_redirects=False))
    created = alice.post(f"{base_url}/notes", json={"title": "Q3 plan", "body": "card on file 4111 1111 1111 1111"})
    step("alice: create note", created)
    note_id = created.json()["id"]
    step("alice: read note", alice.get(f"{base_url}/notes/{note_id}"))
    step("alice: update note", alice.put(f"{base_url}/notes/{note_id}", json={"title": "Q3 plan v2"}))
    step("alice: open admin page", alice.get(f"{base_url}/admin/users"))
    step("alice: delete note", alice.delete(f"{base_url}/notes/{note_id}"))
    step("alice: logout", alice.post(f"{base_url}/logout", allow_redirects=False))
    step("bob: login", bob.post(f"{base_url}/login", data={"username": "bob", "password": "battery staple"}, allow_redirects=False))
    step("bob: grant alice editor", bob.post(f"{base_url}/admin/users/alice/role", json={"role": "editor"}))
    step("bob: export users", bob.get(f"{base_url}/admin/export"))
    step("bob: delete carol", bob.delete(f"{base_url}/admin/users/carol"))
    step("bob: server error", bob.get(f"{base_url}/boom"))
    return results


if __name__ == "__main__":
    for name, status in run(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"):
        print(f"{status}  {name}")
