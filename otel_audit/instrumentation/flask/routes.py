"""What a Flask app routes, for ``otel-audit coverage``: kept next to the Flask adapter, which
records ``http.route`` as the same ``rule.rule``. Blueprints (their ``url_prefix`` included) and
subdomains are already flattened into ``app.url_map`` by Flask, so the map is both the source and
the framework's own count."""

from __future__ import annotations

from typing import Any

IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})


def routes(app: Any) -> list[Any]:
    """One ``AppRoute`` per rule x method (HEAD/OPTIONS, which Flask adds, left out)."""
    from otel_audit.coverage import AppRoute

    found = []
    for rule in app.url_map.iter_rules():
        methods = sorted(set(rule.methods or ()) - IMPLICIT_METHODS)
        host = rule.subdomain or getattr(rule, "host", None) or None
        for method in methods:
            found.append(AppRoute(method, rule.rule, rule.endpoint, host=host))
    return sorted(found, key=lambda r: (r.route, r.method, r.host or ""))


def configured_database(app: Any) -> str | None:
    """The database the app says it uses: Flask-SQLAlchemy's URI, or the tutorial's ``DATABASE`` path."""
    config = getattr(app, "config", {})
    return config.get("SQLALCHEMY_DATABASE_URI") or config.get("DATABASE") or None
