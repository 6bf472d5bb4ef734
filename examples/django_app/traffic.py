"""A scripted session against the Django example: the events an auditor asks for, in order.

    python examples/django_app/traffic.py http://127.0.0.1:8000

``run(new_client)`` works with Django's test client (in-process) and with :class:`HttpClient`
(a real server); both send the CSRF token the way a browser's JavaScript would.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import requests


class HttpClient:
    """The subset of Django's test client API the script uses, over real HTTP."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.base_url + path, allow_redirects=False, timeout=10)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        token = self.session.cookies.get("csrftoken")
        headers = {"X-CSRFToken": token} if token else {}
        headers.update(kwargs.get("headers") or {})
        return self.session.post(self.base_url + path, data=data or {}, headers=headers, allow_redirects=False,
                                 timeout=10)


def login(new_client: Callable[[], Any], username: str, password: str) -> tuple[Any, int]:
    client = new_client()
    client.get("/accounts/login/")  # sets the csrftoken cookie
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return client, response.status_code


class _Counted:
    """A client that counts the requests it sends (the tests expect one record per request)."""

    sent = 0

    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, *args: Any, **kwargs: Any) -> Any:
        _Counted.sent += 1
        return self.client.get(*args, **kwargs)

    def post(self, *args: Any, **kwargs: Any) -> Any:
        _Counted.sent += 1
        return self.client.post(*args, **kwargs)


def run(new_client: Callable[[], Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    _Counted.sent = 0
    counted_client = new_client
    new_client = lambda: _Counted(counted_client())  # noqa: E731
    _, facts["login_failed"] = login(new_client, "bob", "wrong password")
    bob, facts["login"] = login(new_client, "bob", "bob-pw")
    alice, _ = login(new_client, "alice", "alice-pw")
    note = bob.post("/notes/", {"title": "quarterly plan", "body": "draft"}).json()
    facts["note_id"] = note["id"]
    facts["update"] = bob.post(f"/notes/{note['id']}/", {"title": "quarterly plan", "body": "final"}).status_code
    facts["forbidden_delete"] = alice.post(f"/notes/{note['id']}/delete/").status_code
    facts["forbidden_grant"] = bob.post("/staff/users/3/groups/", {"group": "editors"}).status_code
    facts["grant"] = alice.post("/staff/users/3/groups/", {"group": "editors"}).status_code
    facts["promote"] = alice.post("/staff/users/3/promote/").status_code
    alice.get("/admin/notes/note/add/")
    facts["admin_add"] = alice.post("/admin/notes/note/add/", {"owner": "1", "title": "from admin", "body": "",
                                                                "_save": "Save"}).status_code
    facts["delete"] = bob.post(f"/notes/{note['id']}/delete/").status_code
    facts["crash"] = bob.get("/notes/crash/").status_code
    facts["logout"] = bob.post("/accounts/logout/").status_code
    facts["requests"] = _Counted.sent
    return facts


if __name__ == "__main__":
    base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
    for name, value in run(lambda: HttpClient(base_url)).items():
        print(f"{name}: {value}")
