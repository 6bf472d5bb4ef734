"""What a Starlette/FastAPI app routes, for ``otel-audit coverage``: kept next to the ASGI adapter.

Walks ``Mount`` (sub-routers and mounted apps), ``Host``, and FastAPI's included routers, whatever
the version wraps them in: plain ``APIRoute`` copies (FastAPI < 0.165) or ``_IncludedRouter``
branches whose effective routes carry the include prefixes (0.165 and later). A route object of
any other type is an error naming it, never skipped. FastAPI apps are cross-checked against their
own OpenAPI schema: an operation the schema lists that the walk did not find fails coverage.
"""

from __future__ import annotations

from typing import Any, Iterator

IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})
ANY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class UnknownRoute(Exception):
    """A route object this walk does not know; the message names its type and where it was found."""


def routes(app: Any) -> tuple[list[Any], list[str]]:
    """(``AppRoute`` per route x method, notes on what was deliberately not listed)."""
    notes: list[str] = []
    found = sorted(_walk(app.routes, "", None, notes), key=lambda r: (r.route, r.method, r.host or ""))
    return found, notes


def _walk(items: Any, prefix: str, host: str | None, notes: list[str]) -> Iterator[Any]:
    from starlette.routing import Host, Mount, Route, WebSocketRoute

    from otel_audit.coverage import AppRoute

    for route in items:
        name = type(route).__name__
        if name == "_IncludedRouter":  # FastAPI >= 0.165: an include_router() branch
            yield from _walk(_included(route), prefix, host, notes)
        elif name == "_EffectiveRouteContext":  # one route of such a branch, its path already prefixed
            if route.starlette_route is not None:
                yield from _walk([route.starlette_route], prefix, host, notes)
            elif type(route.original_route).__name__ == "_FrontendRouteGroup":
                yield from _walk(route.original_route.routes, prefix + route.frontend_prefix, host, notes)
            else:
                yield from _methods(AppRoute, route.methods, prefix + route.path, route.name, host)
        elif isinstance(route, WebSocketRoute):
            notes.append(f"websocket {prefix + route.path}: not an HTTP request, the adapter does not audit it")
        elif isinstance(route, Route) or name == "_FrontendRoute":
            yield from _methods(AppRoute, route.methods, prefix + route.path, getattr(route, "name", None), host)
        elif isinstance(route, Mount):
            children = getattr(route, "routes", None)
            if children:  # a sub-router or a mounted Starlette app
                yield from _walk(children, prefix + route.path, host, notes)
            else:  # a mounted ASGI app (static files, a WSGI app...): every path under it
                methods = ("GET",) if type(route.app).__name__ == "StaticFiles" else None
                yield from _methods(AppRoute, methods, prefix + route.path + "/{path:path}", route.name, host)
        elif isinstance(route, Host):
            yield from _walk(route.routes, prefix, route.host, notes)
        else:
            where = f" under {prefix!r}" if prefix else ""
            raise UnknownRoute(f"route object {type(route).__module__}.{type(route).__qualname__}{where} is not one "
                               "coverage knows (Route, Mount, Host, WebSocketRoute, FastAPI's included routers); "
                               "its routes cannot be listed")


def _included(branch: Any) -> list[Any]:
    """The effective routes of a FastAPI include_router() branch, low-priority ones included."""
    return [*branch.effective_candidates(), *branch.effective_low_priority_routes()]


def _methods(app_route: Any, methods: Any, path: str, name: str | None, host: str | None) -> Iterator[Any]:
    declared = set(methods or ()) - IMPLICIT_METHODS
    for method in sorted(declared or ANY_METHODS):
        yield app_route(method, path, name, methods_inferred=not methods, host=host)


def schema_operations(app: Any) -> set[tuple[str, str]] | None:
    """(METHOD, path) of every operation in a FastAPI app's OpenAPI schema; None for plain Starlette."""
    openapi = getattr(app, "openapi", None)
    if not callable(openapi) or getattr(app, "openapi_url", None) is None:
        return None
    paths = openapi().get("paths") or {}
    return {(method.upper(), path) for path, operations in paths.items() for method in operations
            if method.upper() in {*ANY_METHODS, "HEAD", "OPTIONS", "TRACE"}} - {(m, p) for m in IMPLICIT_METHODS
                                                                                for p in paths}
