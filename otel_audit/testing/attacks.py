"""Simulated attacks as test helpers (docs/detections.md, "Testing detections in your suite").

Each story drives an app's client through what an attacker would do, through the app's own
login route and fields; the records it leaves are checked with ``audit_trail.assert_detects``
(or ``otel-audit detections test --expect``). A benign session must fire nothing.

A client is anything with a ``request(method, url, ...)`` method (httpx, Starlette's
``TestClient``, ``requests`` with :class:`BaseURL`), Flask's test client (``open``) or Django's
test client (``generic``). :class:`StoryClient` adds what a browser or an API client would: the
CSRF header from a cookie, the bearer token a JSON login answered with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Sequence


@dataclass(frozen=True)
class Login:
    """How the app logs in: its route and field names; ``as_json`` for a JSON body;
    ``token_field`` when the answer is a bearer token (``{"access_token": ...}``); ``prime``: a
    page to GET first (it sets the CSRF cookie); ``ok``: statuses that mean success."""

    route: str = "/login"
    username_field: str = "username"
    password_field: str = "password"
    as_json: bool = False
    token_field: str | None = None
    prime: str | None = None
    ok: tuple[int, ...] = (200, 302, 303)


@dataclass(frozen=True)
class Request:
    """One request of a story: method, path (``{id}`` is filled with a created resource's id),
    and a JSON or form body."""

    method: str
    path: str
    json: Any = None
    data: dict[str, Any] | None = None

    def fill(self, **values: Any) -> "Request":
        return Request(self.method, self.path.format(**values), self.json, self.data)


class BaseURL:
    """``requests.Session`` with a base URL, so stories can use paths."""

    def __init__(self, session: Any, base_url: str) -> None:
        self.session, self.base_url = session, base_url.rstrip("/")

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.session.request(method, self.base_url + url, allow_redirects=False, **kwargs)

    @property
    def cookies(self) -> Any:
        return self.session.cookies


@dataclass
class StoryClient:
    """A client acting as one user agent: cookies (the client's), a CSRF header taken from
    ``csrf_cookie``, and the bearer token of the last JSON login."""

    client: Any
    csrf_cookie: str | None = "csrftoken"
    csrf_header: str = "X-CSRFToken"
    token: str | None = field(default=None, repr=False)

    def _cookie(self, name: str) -> str | None:
        jar = getattr(self.client, "cookies", None)
        if jar is None:
            return None
        try:
            value = jar.get(name)
        except Exception:  # noqa: BLE001 - jars differ (Django's is a SimpleCookie)
            value = None
        return getattr(value, "value", value)

    def send(self, method: str, path: str, json_body: Any = None, data: dict[str, Any] | None = None) -> Any:
        headers: dict[str, str] = {}
        token = self._cookie(self.csrf_cookie) if self.csrf_cookie else None
        if token and method.upper() not in ("GET", "HEAD"):
            headers[self.csrf_header] = token
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        client = self.client
        if hasattr(client, "generic") and hasattr(client, "handler"):  # Django's test client
            body, ctype = (json.dumps(json_body), "application/json") if json_body is not None else (None, None)
            if data is not None:
                return getattr(client, method.lower())(path, data, **{f"HTTP_{k.upper().replace('-', '_')}": v
                                                                       for k, v in headers.items()})
            return client.generic(method.upper(), path, body or "", content_type=ctype or "application/octet-stream",
                                  headers=headers)
        if hasattr(client, "open") and not hasattr(client, "request"):  # Flask's test client
            return client.open(path, method=method.upper(), json=json_body, data=data, headers=headers)
        kwargs: dict[str, Any] = {"headers": headers}
        if json_body is not None:
            kwargs["json"] = json_body
        if data is not None:
            kwargs["data"] = data
        return client.request(method.upper(), path, **kwargs)

    def do(self, request: Request) -> Any:
        return self.send(request.method, request.path, request.json, request.data)

    def login(self, login: Login, username: str, password: str) -> bool:
        """Log in; True when the app said yes."""
        if login.prime:
            self.send("GET", login.prime)
        body = {login.username_field: username, login.password_field: password}
        response = self.send("POST", login.route, json_body=body) if login.as_json else \
            self.send("POST", login.route, data=body)
        status = getattr(response, "status_code", None)
        if login.token_field and status == 200:
            self.token = _json(response).get(login.token_field)
            return bool(self.token)
        if status in login.ok:
            text = _text(response)
            return status != 200 or "invalid" not in text.lower()
        return False


def _json(response: Any) -> dict[str, Any]:
    try:
        value = response.json() if callable(getattr(response, "json", None)) else response.get_json()
    except Exception:  # noqa: BLE001
        return {}
    return value if isinstance(value, dict) else {}


def _text(response: Any) -> str:
    for name in ("text", "data", "content"):
        value = getattr(response, name, None)
        if value is not None:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return ""


def _created_id(response: Any) -> Any:
    body = _json(response)
    return body.get("id")


# -- the stories ------------------------------------------------------------------------------


def brute_force(client: StoryClient, login: Login, username: str, attempts: int = 8) -> None:
    """Guess one account's password ``attempts`` times (rule otel_audit_brute_force)."""
    for n in range(attempts):
        client.login(login, username, f"guess-{n}-not-the-password")


def spray(client: StoryClient, login: Login, usernames: Sequence[str], password: str = "Spring2026!") -> None:
    """One common password against many accounts (rule otel_audit_password_spray)."""
    for username in usernames:
        client.login(login, username, password)


def guess_then_login(client: StoryClient, login: Login, username: str, password: str, failures: int = 6) -> bool:
    """A burst of wrong guesses, then the right password (rule otel_audit_login_after_failures)."""
    brute_force(client, login, username, failures)
    return client.login(login, username, password)


def escalate_privilege(client: StoryClient, login: Login, username: str, password: str, grant: Request) -> Any:
    """Log in and grant an administrative role (rule otel_audit_privilege_escalation)."""
    client.login(login, username, password)
    return client.do(grant)


def self_grant(client: StoryClient, login: Login, username: str, password: str, grant: Request) -> Any:
    """Log in and grant a role to one's own account (rule otel_audit_self_granted_privilege):
    ``grant`` addresses the account ``username`` logs in to, by the id or name the app's route takes.
    The same requests as :func:`escalate_privilege`; what differs is whose account ``grant`` names."""
    return escalate_privilege(client, login, username, password, grant)


def mass_delete(client: StoryClient, login: Login, username: str, password: str, create: Request, delete: Request,
                count: int = 12) -> list[Any]:
    """Create ``count`` resources, then delete each (rule otel_audit_mass_deletion); ``delete``'s
    path has ``{id}``, filled with the id each creation answered."""
    client.login(login, username, password)
    ids = [_created_id(client.do(create)) for _ in range(count)]
    return [client.do(delete.fill(id=i)).status_code for i in ids if i is not None]


def mass_read(client: StoryClient, login: Login, username: str, password: str, read: Request, count: int = 25) -> None:
    """Read or export ``count`` times (rule otel_audit_mass_read)."""
    client.login(login, username, password)
    for _ in range(count):
        client.do(read)


def probe_denied(client: StoryClient, login: Login | None, username: str | None, password: str | None,
                 probes: Iterable[Request], rounds: int = 4) -> None:
    """Walk routes the user may not use (rule otel_audit_access_denied_burst)."""
    if login and username:
        client.login(login, username, password or "")
    for _ in range(rounds):
        for probe in probes:
            client.do(probe)


def admin_from_new_source(home: StoryClient, elsewhere: StoryClient, login: Login, username: str, password: str,
                          action: Request) -> None:
    """One admin acts from two addresses (rule otel_audit_admin_new_source): ``home`` and
    ``elsewhere`` are clients seen from different client addresses."""
    for client in (home, elsewhere):
        client.login(login, username, password)
        client.do(action)


def benign_session(client: StoryClient, login: Login, username: str, password: str,
                   work: Iterable[Request] = (), typos: int = 2) -> None:
    """What a normal day looks like: a couple of typos, a login, ordinary work. Must fire nothing."""
    for n in range(typos):
        client.login(login, username, password + "x" * (n + 1))
    client.login(login, username, password)
    created = None
    for request in work:
        response = client.do(request.fill(id=created) if "{id}" in request.path else request)
        created = _created_id(response) or created


def zone_at_local_hour(hour: int, weekdays: Iterable[int] = range(1, 8), now: datetime | None = None) -> str | None:
    """A fixed-offset time zone (``Etc/GMT-3`` is UTC+3) where it is now within an hour of
    ``hour`` o'clock, on one of ``weekdays`` (ISO, 1 Monday); None when there is none. For a test
    policy's ``local_time.zone``: the app's records then fall inside or outside office hours
    (rule otel_audit_privilege_outside_office_hours) without touching its clock."""
    now = now or datetime.now(timezone.utc)
    days = set(weekdays)
    best: tuple[float, str] | None = None
    for offset in range(-12, 15):  # the zones of Etc/: UTC-12 ... UTC+14
        local = now + timedelta(hours=offset)
        distance = abs(local.hour + local.minute / 60 - hour)
        distance = min(distance, 24 - distance)
        name = "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-3 is ahead of UTC
        if distance <= 1 and local.isoweekday() in days and (best is None or distance < best[0]):
            best = (distance, name)
    return best[1] if best else None


STORIES: dict[str, Callable[..., Any]] = {
    "brute_force": brute_force, "spray": spray, "guess_then_login": guess_then_login,
    "escalate_privilege": escalate_privilege, "self_grant": self_grant, "mass_delete": mass_delete,
    "mass_read": mass_read,
    "probe_denied": probe_denied, "admin_from_new_source": admin_from_new_source, "benign_session": benign_session,
}
