"""Event ids, configuration errors and the env-var reference."""

from __future__ import annotations

import uuid

import pytest

from otel_audit.config import ENV_VARS, AuditConfig, env_table_markdown
from otel_audit.errors import ConfigError
from otel_audit.ids import new_event_id
from tests.support.procs import REPO


def test_event_ids_are_uuid7_unique_and_sortable() -> None:
    ids = [new_event_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("OTEL_AUDIT_ENABLED", "maybe", "OTEL_AUDIT_ENABLED: 'maybe' is invalid: expected true or false"),
        ("OTEL_AUDIT_FAIL_MODE", "sideways", "OTEL_AUDIT_FAIL_MODE: 'sideways' is invalid: expected one of open, closed"),
        ("OTEL_AUDIT_EXPORTER", "kafka", "OTEL_AUDIT_EXPORTER: 'kafka' is invalid: expected one of auto, otlp, sink, console"),
    ],
)
def test_invalid_env_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        AuditConfig.from_env({name: value})
    assert str(info.value) == message


def test_secret_env_values_never_echoed() -> None:
    secret_vars = [var for var in ENV_VARS if var.secret]
    assert secret_vars, "no secret variable declared: the test would check nothing"
    for var in secret_vars:
        with pytest.raises(ConfigError) as info:  # too short to be a key: refused
            AuditConfig.from_env({var.name: "\x00not-valid\x00"})
        assert str(info.value).startswith(f"{var.name}: <hidden> is invalid")
        assert "not-valid" not in str(info.value)


def test_readme_env_table_is_the_generated_one() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme.split("<!-- env-table:start", 1)[1].split("-->\n", 1)[1]
    table = table.split("\n<!-- env-table:end -->", 1)[0]
    assert table == env_table_markdown(), "README table is stale: regenerate with python -m otel_audit.config"
    assert all(f"| `{var.name}` |" in table for var in ENV_VARS)


def test_otlp_inferred_from_standard_variables() -> None:
    config = AuditConfig.from_env({})
    assert config.wants_otlp({"OTEL_LOGS_EXPORTER": "console,otlp"})
    assert config.wants_otlp({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not config.wants_otlp({})
    assert not AuditConfig.from_env({"OTEL_AUDIT_EXPORTER": "sink"}).wants_otlp({"OTEL_LOGS_EXPORTER": "otlp"})


def test_a_failing_actor_source_is_skipped_not_fatal() -> None:
    from otel_audit.actors import ActorResolver
    from otel_audit.errors import containment

    class Facts:
        def framework_user(self):
            raise RuntimeError("session closed")

        def app_user(self):
            return None

        def session(self):
            return {"user_id": 7}

        def header(self, name):
            return None

    before = containment.counts["actor source framework_user"]
    actor = ActorResolver(("framework_user", "session:user_id")).resolve(Facts())
    assert actor.id == "7" and actor.source == "session:user_id"
    assert containment.counts["actor source framework_user"] == before + 1


def test_absent_facts_are_left_out_and_zero_or_false_facts_are_kept() -> None:
    from otel_audit.attributes import event_attributes
    from otel_audit.event import Actor, AuditEvent, DbInfo, HttpInfo, Source, Target

    event = AuditEvent("data_modification", "delete", outcome="success",
                       actor=Actor(id=0, name="", type=None, verified=False, roles=()),
                       source=Source(address="10.0.0.1", port=0, user_agent=""),
                       target=Target(type="post", id=0, name=None),
                       http=HttpInfo(method="DELETE", route="/posts/<id>", path="", status_code=0),
                       db=DbInfo(system="sqlite", collection="post", row_count=0, operation=()))
    attrs = event_attributes(event, "metadata")
    # 0 and False are facts (user 0, port 0, no rows, unverified); None, "" and () are not
    assert attrs["enduser.id"] == 0 and attrs["audit.actor.verified"] is False
    assert attrs["client.port"] == 0 and attrs["audit.target.id"] == 0
    assert attrs["http.response.status_code"] == 0 and attrs["audit.db.rows_affected"] == 0
    for absent in ("user.name", "audit.actor.type", "user.roles", "user_agent.original", "audit.target.name",
                   "url.path", "db.operation.name", "db.namespace"):
        assert absent not in attrs, absent
    assert attrs["client.address"] == "10.0.0.1" and attrs["http.route"] == "/posts/<id>"
