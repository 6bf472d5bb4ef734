"""Tables of an app's SQLAlchemy models, for ``otel-audit coverage``: kept next to the SQLAlchemy
adapter (which names a row's type by its table)."""

from __future__ import annotations

import sys
from typing import Any, Sequence


def tables(packages: Sequence[str]) -> list[Any]:
    """Tables of the SQLAlchemy models (declarative classes, Flask-SQLAlchemy ``db``, bare
    ``MetaData``) in the already imported modules of the app's package."""
    if "sqlalchemy" not in sys.modules:
        return []
    from sqlalchemy import MetaData

    from otel_audit.coverage import AppTable

    metadatas: dict[int, tuple[Any, str]] = {}
    models: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not any(name == p or name.startswith(p + ".") for p in packages):
            continue
        for attr, value in list(vars(module).items()):
            try:
                metadata = value if isinstance(value, MetaData) else getattr(value, "metadata", None)
            except Exception:  # noqa: BLE001 - context-bound proxies (Flask's ``g``, ``current_user``) raise
                continue
            if isinstance(metadata, MetaData):
                metadatas.setdefault(id(metadata), (metadata, f"{name}.{attr}"))
            table = getattr(value, "__table__", None)
            if isinstance(value, type) and getattr(table, "name", None):
                models.setdefault(table.name, f"{value.__module__}.{value.__qualname__}")
    found = {}
    for metadata, where in metadatas.values():
        for table in metadata.tables.values():
            found[table.name] = AppTable(table.name, models.get(table.name, where), True, table.name)
    return sorted(found.values(), key=lambda t: t.table)
