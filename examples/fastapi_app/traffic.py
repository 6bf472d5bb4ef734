"""A scripted session against the FastAPI example: the events an auditor asks for, in order.

    python examples/fastapi_app/traffic.py http://127.0.0.1:8000
"""

from __future__ import annotations

import sys

import httpx


def run(client: httpx.Client) -> dict[str, object]:
    """Drive the app; returns facts the tests check records against (ids, statuses)."""
    facts: dict[str, object] = {}
    sent: list[str] = []
    client.event_hooks["request"] = [*client.event_hooks["request"], lambda request: sent.append(request.url.path)]
    facts["login_failed"] = client.post("/token", json={"username": "alice", "password": "wrong"}).status_code
    alice = {"Authorization": "Bearer " + client.post("/token", json={"username": "alice", "password": "alice-pw"}).json()["access_token"]}
    bob_login = client.post("/token", json={"username": "bob", "password": "bob-pw"})
    bob = {"Authorization": "Bearer " + bob_login.json()["access_token"]}
    note = client.post("/notes", json={"title": "quarterly plan", "body": "draft"}, headers=alice).json()
    facts["note_id"] = note["id"]
    facts["update"] = client.put(f"/notes/{note['id']}", json={"title": "quarterly plan", "body": "final"}, headers=alice).status_code
    facts["forbidden_delete"] = client.delete(f"/notes/{note['id']}", headers=bob).status_code
    facts["forbidden_grant"] = client.post("/admin/users/1/roles", json={"role": "admin"}, headers=bob).status_code
    facts["grant"] = client.post("/admin/users/2/roles", json={"role": "editor"}, headers=alice).status_code
    facts["delete"] = client.delete(f"/notes/{note['id']}", headers=alice).status_code
    # Servers drop the connection after an unhandled exception: ask for a fresh one afterwards.
    facts["crash"] = client.get("/reports/crash", headers={**alice, "Connection": "close"}).status_code
    facts["logout"] = client.post("/logout", headers=bob).status_code
    facts["after_logout"] = client.get("/notes", headers=bob).status_code
    facts["requests"] = len(sent)
    return facts


if __name__ == "__main__":
    base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for name, value in run(client).items():
            print(f"{name}: {value}")
