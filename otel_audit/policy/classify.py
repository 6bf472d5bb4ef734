"""Semantic classification of app routes: "a POST to /auth/login answered 200" -> what it *means*.

A :class:`Classifier` is compiled once from the policy's ``routes`` (user routes first, then the
built-in ones). For an ``http`` event it finds the first route whose method and path glob match,
then decides the outcome from the response: ``failure_when`` conditions first, then
``success_when`` (none holding means failure), else the status-derived outcome stays. A failed
login becomes ``authentication.login_failed`` with outcome ``failure``.

The classifier is pure: it reads one event and says what its route means. Where in the order of
evidence it applies (before an auth signal, a database change or REST semantics) is
:mod:`otel_audit.action`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Pattern
from urllib.parse import urlsplit

from otel_audit.action import is_request_event
from otel_audit.event import AuditEvent
from otel_audit.policy.globs import compile_globs, normalise_route
from otel_audit.policy.model import ActorSettings, Condition, Route


def path_spellings(path: str | None) -> tuple[str, ...]:
    """A route or path as written and without its trailing slash: ``POST /reset-password/`` is
    ``POST /reset-password`` (routes under any mount prefix are matched by the globs' ``*/``)."""
    if not path:
        return ()
    stripped = path.rstrip("/")
    return (path, stripped) if stripped and stripped != path else (path,)


def _in_ranges(status: int | None, ranges: tuple[tuple[int, int], ...]) -> bool:
    return status is not None and any(low <= status <= high for low, high in ranges)


class _CompiledCondition:
    __slots__ = ("source", "status", "redirect", "redirect_not", "headers", "session_changed", "actor_changed")

    def __init__(self, condition: Condition) -> None:
        self.source = condition
        self.status = condition.status
        self.redirect = compile_globs(condition.redirect, ignore_case=True)
        self.redirect_not = compile_globs(condition.redirect_not, ignore_case=True)
        self.headers = tuple((name, compile_globs([glob], ignore_case=True)) for name, glob in condition.response_header)
        self.session_changed = condition.session_changed
        self.actor_changed = condition.actor_changed

    def holds(self, event: AuditEvent) -> bool:
        http = event.http
        if self.status and not _in_ranges(http.status_code, self.status):
            return False
        location = http.redirect_location or ""
        if self.redirect is not None and not (location and self.redirect.match(location)):
            return False
        if self.redirect_not is not None and (not location or self.redirect_not.match(location)):
            return False
        if self.headers:
            headers = {k.lower(): v for k, v in (http.response_headers or {}).items()}
            for name, pattern in self.headers:
                value = headers.get(name)
                if value is None or not pattern.match(str(value)):
                    return False
        if self.session_changed is not None and bool(http.session_changed) != self.session_changed:
            return False
        if self.actor_changed is not None and actor_changed(event) != self.actor_changed:
            return False
        return True


def actor_changed(event: AuditEvent) -> bool:
    """The actor after the response is a user and differs from the one before the view ran."""
    before = event.attributes.get("audit.actor.before")
    return bool(event.actor.id) and event.actor.type != "anonymous" and event.actor.id != before


@dataclass(frozen=True)
class Classification:
    """What :meth:`Classifier.classify` found for one event (also shown by ``policy explain``)."""

    route: Route
    category: str
    action: str
    outcome: str
    reason: str | None
    why: str


class _CompiledRoute:
    __slots__ = ("route", "methods", "paths", "success_when", "failure_when")

    def __init__(self, route: Route) -> None:
        self.route = route
        self.methods = frozenset(route.methods)
        self.paths: Pattern[str] | None = compile_globs(route.paths)
        self.success_when = tuple(_CompiledCondition(c) for c in route.success_when)
        self.failure_when = tuple(_CompiledCondition(c) for c in route.failure_when)


class Classifier:
    def __init__(self, routes: tuple[Route, ...], actors: ActorSettings, cache_size: int = 4096) -> None:
        self.routes = [_CompiledRoute(route) for route in routes]
        self.actors = actors
        self._find = lru_cache(maxsize=cache_size)(self._find_uncached)
        self._login_routes = [r for r in self.routes if r.route.category == "authentication" and r.route.action == "login"]

    def _find_uncached(self, method: str, route: str | None, path: str | None) -> int | None:
        candidates = path_spellings(route) + path_spellings(path)
        for index, compiled in enumerate(self.routes):
            if compiled.methods and method not in compiled.methods:
                continue
            if compiled.paths is None:
                continue
            if any(compiled.paths.match(candidate) for candidate in candidates):
                return index
        return None

    def is_login_location(self, location: str) -> bool:
        """Whether a redirect ``Location`` points at a login route of this policy (query, scheme and
        host ignored; a trailing slash too)."""
        path = urlsplit(location).path or location.split("?", 1)[0]
        for compiled in self._login_routes:
            if compiled.paths is not None and any(compiled.paths.match(p) for p in path_spellings(path)):
                return True
        return False

    def classify(self, event: AuditEvent) -> Classification | None:
        http = event.http
        if http is None or not is_request_event(event):
            return None
        index = self._find((http.method or "").upper(), normalise_route(http.route), http.path)
        if index is None:
            return None
        compiled = self.routes[index]
        route = compiled.route
        outcome, reason, why = event.outcome, event.outcome_reason, "outcome from the status code"
        if event.error_type is not None:
            outcome, reason, why = "failure", event.outcome_reason, "the view raised"
        else:
            failed = next((i for i, c in enumerate(compiled.failure_when) if c.holds(event)), None)
            if failed is not None:
                outcome, why = "failure", f"failure_when[{failed}] holds"
                reason = _describe_response(event)
            elif compiled.success_when:
                held = next((i for i, c in enumerate(compiled.success_when) if c.holds(event)), None)
                if held is not None:
                    outcome, reason, why = "success", None, f"success_when[{held}] holds"
                else:
                    outcome, why = "failure", "no success_when condition holds"
                    reason = _describe_response(event)
        action = route.action
        if outcome in ("failure", "denied") and route.failure_action:
            action = route.failure_action
        return Classification(route, route.category, action, outcome, reason, why)

    def apply(self, event: AuditEvent) -> Classification | None:
        """Rewrite an ``http`` event to what its route means; returns the classification or None."""
        found = self.classify(event)
        if found is not None:
            self.apply_classification(event, found)
        return found

    def apply_classification(self, event: AuditEvent, found: Classification) -> None:
        event.attributes["audit.http.original_action"] = f"{event.category}.{event.action}"
        event.attributes["audit.classification.route"] = found.route.id
        for key, value in found.route.attributes:
            event.attributes[key] = list(value) if isinstance(value, tuple) else value
        event.category, event.action = found.category, found.action
        event.outcome, event.outcome_reason = found.outcome, found.reason
        if found.category == "authentication" and found.outcome != "success":
            self._attempted_username(event)

    def _attempted_username(self, event: AuditEvent) -> None:
        """Failed logins: the name that was tried (per policy), never the password."""
        body = event.http.request_body if event.http is not None else None
        if not isinstance(body, dict):
            return
        for field in self.actors.username_fields:
            value = body.get(field)
            if isinstance(value, str) and value.strip():
                shown = self.attempted(value.strip()[:256])
                if shown is not None:
                    event.attributes["audit.attempted_username"] = shown
                return

    def attempted(self, name: str) -> str | None:
        """How the policy lets a tried (unverified) username out: its HMAC pseudonym by default
        (``otel-audit hash NAME`` finds it), as typed (``plain``), or not at all (``off``)."""
        mode = self.actors.record_attempted_username
        if mode == "off":
            return None
        if mode == "hmac":
            from otel_audit.redaction.pseudonyms import pseudonymise

            return pseudonymise(name)
        return name


def _describe_response(event: AuditEvent) -> str:
    http = event.http
    if http.redirect_location:
        return f"redirected to {http.redirect_location.split('?')[0][:200]}"
    if http.status_code is not None and http.status_code >= 400:
        return f"http {http.status_code}"
    return f"no sign of success (http {http.status_code})"
