"""Load the example apps fresh for a test (they read their settings from the environment at import),
and turn sink / OTLP records into one shape so the same assertions check both runs."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterable


def fresh_import(name: str) -> ModuleType:
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]
    return importlib.import_module(name)


@dataclass
class Rec:
    event_name: str
    attributes: dict[str, Any]
    trace_id: str

    def get(self, key: str) -> Any:
        return self.attributes.get(key)


def from_sink(records: Iterable[dict[str, Any]]) -> list[Rec]:
    return [Rec(r["event_name"], r["attributes"], r.get("trace_id", "")) for r in records]


def from_otlp(records: Iterable[Any]) -> list[Rec]:
    return [Rec(r.event_name, r.attributes, r.trace_id) for r in records]


def where(records: list[Rec], **attrs: Any) -> list[Rec]:
    """Records whose attributes equal every given value (keys use __ for dots)."""
    wanted = {key.replace("__", "."): value for key, value in attrs.items()}
    return [r for r in records if all(r.attributes.get(k) == v for k, v in wanted.items())]


def one(records: list[Rec], **attrs: Any) -> Rec:
    found = where(records, **attrs)
    assert len(found) == 1, f"expected one record with {attrs}, found {len(found)}: " + "; ".join(
        f"{r.event_name} {r.attributes.get('http.route')} {r.attributes.get('audit.outcome')}" for r in found
    ) + f" among {[r.event_name for r in records]}"
    return found[0]


def one_record_per_request(records: list[Rec], requests_made: int, readiness: tuple[str, str] | None = None,
                           quiet: dict[tuple[str, str], int] | None = None) -> list[Rec]:
    """Exactly one record per HTTP request sent, and no statement- or row-level record beside it
    (the request's database changes are inside it, as ``audit.changes``). ``readiness``: the
    (method, path) a test polled until the server answered, left out. ``quiet``: {(method, path):
    how many were sent} of the requests the policy does not record (the quiet default's successful
    plain reads): none of them may have a record, and they are not expected among the others.
    Returns those records."""
    quiet = quiet or {}
    per_request = [r for r in records if r.get("http.request.method")
                   and (r.get("http.request.method"), r.get("url.path")) != readiness]
    listing = sorted(f"{r.get('http.request.method')} {r.get('url.path')} {r.event_name}" for r in per_request)
    assert not [r for r in per_request if (r.get("http.request.method"), r.get("url.path")) in quiet], listing
    expected = requests_made - sum(quiet.values())
    assert len(per_request) == expected, listing
    assert len({r.get("audit.event_id") for r in per_request}) == expected
    return per_request
