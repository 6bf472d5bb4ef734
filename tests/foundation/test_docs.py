"""docs/attributes.md documents every attribute the enrich step can write and every catalogued action."""

from __future__ import annotations

import re

from otel_audit.attributes import event_attributes
from otel_audit.catalogue import ACTIONS
from otel_audit.event import Actor, AuditEvent, Change, DbInfo, HttpInfo, Source, Target
from otel_audit.local_time import LocalTime
from tests.support.procs import REPO


def _everything() -> AuditEvent:
    return AuditEvent(
        category="data_modification", action="update_resource", outcome="failure", outcome_reason="x",
        actor=Actor(id="1", name="a", roles=("r",), type="user", session_id="s", source="manual", verified=False),
        source=Source(address="127.0.0.1", port=1, user_agent="ua"), target=Target("t", "1", "n"),
        http=HttpInfo(method="PUT", route="/r", path="/r", status_code=500, scheme="http", host="h", query="q=1",
                      request_headers={"Accept": "x"}, request_body={"a": 1}, response_headers={"Server": "s"},
                      response_body={"b": 2}),
        db=DbInfo(system="sqlite", namespace="main", collection="t", operation="UPDATE", query_text="UPDATE t",
                  parameters=[1], row_count=1),
        error_type="KeyError", changed_fields=("f",),
        changes=[Change("data_modification", "update_resource", table="t", type="t", id="1", fields=("f",),
                        rows=1, values={"f": {"old": 1, "new": 2}})],
    )


def test_every_written_attribute_is_documented() -> None:
    doc = (REPO / "docs" / "attributes.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", doc, flags=re.M))
    keys = set(event_attributes(_everything(), "full"))
    grant = AuditEvent("authorization", "grant_role", actor=Actor(id="1"), target=Target("user", "1"))
    keys |= set(event_attributes(grant, "full")) | set(LocalTime().attributes(0))  # only some records carry these
    keys = {re.sub(r"^(http\.(request|response)\.header\.).*", r"\1<name>", key) for key in keys}
    missing = keys - documented
    assert not missing, f"docs/attributes.md lacks {sorted(missing)}"


def test_every_catalogued_action_is_documented() -> None:
    doc = (REPO / "docs" / "attributes.md").read_text()
    assert all(f"| `{action}` |" in doc for action in ACTIONS)


def test_levels_add_payloads_only_when_asked() -> None:
    event = _everything()
    metadata, request, full = (set(event_attributes(event, level)) for level in ("metadata", "request", "full"))
    payload = {"url.query", "audit.request.body", "db.query.text", "http.request.header.accept"}
    assert not (payload & metadata)
    assert payload <= request
    assert not ({"audit.response.body", "db.query.parameters"} & request)
    assert {"audit.response.body", "db.query.parameters", "http.response.header.server"} <= full
    # what the action touched is at every level; the changed values only at full
    attrs = {level: event_attributes(_everything(), level) for level in ("metadata", "request", "full")}
    assert attrs["metadata"]["audit.changes"] == attrs["request"]["audit.changes"] == [
        {"action": "update_resource", "type": "t", "id": "1", "fields": ["f"], "rows": 1}]
    assert attrs["full"]["audit.changes"][0]["values"] == {"f": {"old": 1, "new": 2}}
