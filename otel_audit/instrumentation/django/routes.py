"""What a Django project routes and which tables its models use, for ``otel-audit coverage``: kept
next to the Django adapter, which records ``http.route`` as ``"/" + resolver_match.route`` (the
same concatenation of ``include()`` prefixes) and admin-site requests as category ``admin``."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from otel_audit.config import set_environment_default

ANY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class UnknownPattern(Exception):
    """A URL pattern object that is neither a URLPattern nor a URLResolver."""


def setup(settings_module: Any) -> None:
    set_environment_default("DJANGO_SETTINGS_MODULE", settings_module.__name__)
    import django

    django.setup()


def routes() -> list[Any]:
    """One ``AppRoute`` per pattern x method; function views (methods unknown) get every common one."""
    from django.urls import get_resolver

    return sorted(_walk(get_resolver().url_patterns, "", ()), key=lambda r: (r.route, r.method))


def _walk(patterns: Iterable[Any], prefix: str, namespaces: tuple[str, ...]) -> Iterator[Any]:
    from django.urls import URLPattern, URLResolver

    from otel_audit.coverage import AppRoute

    for pattern in patterns:
        text = _join(prefix, str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            spaces = namespaces + ((pattern.namespace,) if pattern.namespace else ())
            yield from _walk(pattern.url_patterns, text, spaces)
        elif isinstance(pattern, URLPattern):
            category = "admin" if "admin" in namespaces else "http"
            view_class = getattr(pattern.callback, "view_class", None)
            if view_class is not None:
                methods = [m.upper() for m in view_class.http_method_names
                           if m not in ("head", "options") and hasattr(view_class, m)]
                inferred = False
            else:
                methods, inferred = list(ANY_METHODS), True
            name = ":".join((*namespaces, pattern.name)) if pattern.name else None
            for method in methods:
                yield AppRoute(method, "/" + text, name, category, inferred)
        else:
            raise UnknownPattern(f"URL pattern {type(pattern).__module__}.{type(pattern).__qualname__} at "
                                 f"{'/' + prefix!r} is neither a URLPattern nor a URLResolver; its routes cannot be listed")


def _join(prefix: str, text: str) -> str:
    """As Django's resolver joins ``resolver_match.route``: an inner regex loses its leading ``^``."""
    return prefix + text.removeprefix("^") if prefix else text


def tables() -> list[Any]:
    """The table of every installed model, named as the adapter names its rows' type (app.model)."""
    from django.apps import apps

    from otel_audit.coverage import AppTable

    found = [AppTable(model._meta.db_table, f"{model.__module__}.{model.__qualname__}", True,  # noqa: SLF001
                      f"{model._meta.app_label}.{model._meta.model_name}")  # noqa: SLF001
             for model in apps.get_models()]
    return sorted(found, key=lambda t: t.table)
