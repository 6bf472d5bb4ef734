"""Records land in each backend in the shape its own content expects (collector-config/README.md,
"Backend fields"): Splunk CIM fields, Datadog standard attributes, a small fixed Loki label set
with the rest as structured metadata, and the README's LogQL examples match what Loki stores.
"""

from __future__ import annotations

import re
from typing import Any

from .conftest import CONFIG_DIR, DELIVERY_TIMEOUT, wait_until
from .standins import Datadog, Loki, SplunkHEC
from .test_e2e import DD_API_KEY, SPLUNK_TOKEN, ids_of

CHANGE = {  # an ORM update of one note: the record's primary change
    "category": "data_modification", "action": "update_resource", "user": "alice",
    "user.name": "alice@example.com", "audit.target.type": "notes.note", "audit.target.id": "7",
    "audit.target.name": "Quarterly plan", "db.collection.name": "notes_note", "db.operation.name": "UPDATE",
    "http.request.method": "PATCH", "http.route": "/notes/<id>", "server.address": "shop.example.com",
}
GRANT = {"category": "account_management", "action": "grant_role", "user": "root", "audit.target.type": "user",
         "audit.target.id": "42"}


def send(sender, spec: dict[str, Any], outcome: str = "success") -> str:
    spec = dict(spec)
    return sender.audit(outcome=outcome, user=spec.pop("user"), category=spec.pop("category"), action=spec.pop("action"), **spec)


def by_event_id(records: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {r[key]["audit.event_id"]: r for r in records if "audit.event_id" in r[key]}


def wait_ids(fetch, ids: set[str], key: str = "attributes") -> list[dict[str, Any]]:
    return wait_until(lambda: (lambda rs: rs if ids <= ids_of(rs, key) else None)(fetch()), DELIVERY_TIMEOUT, what=f"{len(ids)} records")


# ----------------------------------------------------------------------------------------------
# Splunk: CIM Authentication and Change


def test_splunk_gets_cim_fields(run_collector, make_sender) -> None:
    with SplunkHEC(SPLUNK_TOKEN) as splunk:
        collector = run_collector(
            ["gateway.yaml", "splunk.yaml"],
            env={"SPLUNK_HEC_ENDPOINT": f"{splunk.base_url}/services/collector/event", "SPLUNK_HEC_TOKEN": SPLUNK_TOKEN,
                 "OTEL_AUDIT_HOST_NAME": "gw-1"},
        )
        sender = make_sender(collector.otlp_http_endpoint)
        ok = sender.audit(outcome="success", **{"user.name": "alice@example.com", "client.port": 50123})
        failed = sender.audit(outcome="failure", user=None, **{"audit.attempted_username": "admin"})
        change = send(sender, CHANGE)
        grant = send(sender, GRANT, outcome="denied")
        hostless = make_sender(collector.otlp_http_endpoint, resource={"service.name": "batch"}).audit()
        events = by_event_id(wait_ids(splunk.snapshot, {ok, failed, change, grant, hostless}, "fields"), "fields")

    login = events[ok]
    assert login["sourcetype"] == "otel:audit:authentication"
    assert login["host"] == "app-host-1" and login["source"] == "checkout"
    assert {k: login["fields"].get(k) for k in ("action", "status", "user", "user_id", "src", "src_port", "dest", "app",
                                                 "signature", "signature_id", "event_name", "otel.scope.name",
                                                 "vendor_product", "command")} == {
        "action": "success", "status": "success", "user": "alice@example.com", "user_id": "alice",
        "src": "203.0.113.7", "src_port": 50123, "dest": "app-host-1", "app": "checkout",
        "signature": "user alice login success", "signature_id": "login", "event_name": "audit.authentication.login",
        "otel.scope.name": "otel_audit", "vendor_product": "otel-audit", "command": "POST /login"}
    assert login["fields"]["audit.outcome"] == "success"  # the OTel names stay
    # A failed login for a name that does not exist: CIM's user is the name that was tried.
    assert events[failed]["fields"]["action"] == "failure" and events[failed]["fields"]["user"] == "admin"

    upd = events[change]
    assert upd["sourcetype"] == "otel:audit:data_modification"
    assert {k: upd["fields"].get(k) for k in ("action", "status", "change_type", "object", "object_id",
                                               "object_category", "command", "dest", "user")} == {
        "action": "modified", "status": "success", "change_type": "database", "object": "Quarterly plan",
        "object_id": "7", "object_category": "notes.note", "command": "UPDATE", "dest": "shop.example.com",
        "user": "alice@example.com"}
    acl = events[grant]["fields"]
    assert (acl["action"], acl["status"], acl["change_type"], acl["object_category"], acl["object"]) == (
        "acl_modified", "failure", "AAA", "user", "42")
    # No host.name on the application's resource: the gateway's own name, not "unknown".
    assert events[hostless]["host"] == "gw-1" and events[hostless]["fields"]["dest"] == "gw-1"


# ----------------------------------------------------------------------------------------------
# Datadog: standard attributes


DD_ADDED = {"ddsource", "service", "usr.id", "usr.name", "usr.email", "evt.name", "evt.category", "evt.action",
            "evt.outcome", "network.client.ip", "network.client.port", "http.method", "http.status_code",
            "http.useragent", "http.url_details.path", "http.url_details.host", "http.url_details.scheme", "ddtags"}


def test_datadog_gets_standard_attributes(run_collector, make_sender) -> None:
    with Datadog(DD_API_KEY) as dd:
        collector = run_collector(["gateway.yaml", "datadog-otlp.yaml"],
                                  env={"DD_OTLP_LOGS_ENDPOINT": f"{dd.base_url}/v1/logs", "DD_API_KEY": DD_API_KEY})
        sender = make_sender(collector.otlp_http_endpoint, resource={"service.name": "checkout", "deployment.environment.name": "prod"})
        failed = sender.audit(outcome="failure", **{"user.name": "alice", "user.email": "alice@example.com",
                                                    "client.port": 50123, "user_agent.original": "curl/8",
                                                    "url.path": "/login", "url.scheme": "https", "server.address": "shop.example.com"})
        denied = sender.audit(outcome="denied", category="authorization", action="access_denied")
        records = by_event_id(wait_ids(dd.snapshot, {failed, denied}), "attributes")

    attrs = records[failed]["attributes"]
    assert {k: attrs[k] for k in DD_ADDED} == {
        "ddsource": "otel_audit", "service": "checkout", "usr.id": "alice", "usr.name": "alice",
        "usr.email": "alice@example.com", "evt.name": "authentication", "evt.category": "authentication",
        "evt.action": "login", "evt.outcome": "failure", "network.client.ip": "203.0.113.7",
        "network.client.port": 50123, "http.method": "POST", "http.status_code": 401, "http.useragent": "curl/8",
        "http.url_details.path": "/login", "http.url_details.host": "shop.example.com",
        "http.url_details.scheme": "https", "ddtags": "audit_category:authentication,audit_outcome:failure,env:prod"}
    other = records[denied]["attributes"]
    # usr.email only where the record has user.email (the policy let it through), never made up.
    assert "usr.email" not in other and "usr.name" not in other
    assert (other["evt.name"], other["evt.outcome"]) == ("authorization", "failure")
    assert other["audit.outcome"] == "denied"  # the OTel names stay


# ----------------------------------------------------------------------------------------------
# Loki: labels, structured metadata, LogQL


# The Loki side of collector-config/README.md, "Loki labels" (limits_config.otlp_config).
LOKI_CONFIG = {"index_label": ("audit.category", "audit.outcome"), "structured_metadata": ("service.instance.id",)}
SELECTOR = re.compile(r'\{([^{}]*)\}')
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')
FILTER = re.compile(r'\|\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def readme_logql() -> list[str]:
    text = (CONFIG_DIR / "README.md").read_text()
    blocks = re.findall(r"```logql\n(.*?)```", text, re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def _match(op: str, actual: str | None, expected: str) -> bool:
    actual = actual or ""
    return {"=": actual == expected, "!=": actual != expected,
            "=~": re.fullmatch(expected, actual) is not None, "!~": re.fullmatch(expected, actual) is None}[op]


def logql_matches(query: str, stream: dict[str, Any]) -> bool:
    """The log-selection part of a query: stream selector on labels, label filters on both."""
    selector = SELECTOR.search(query)
    assert selector, f"no stream selector in {query!r}"
    matchers = MATCHER.findall(selector.group(1))
    assert matchers, f"empty stream selector in {query!r}"
    for name, op, value in matchers:
        assert name in stream["labels"] or op in ("!=", "!~"), f"{query!r}: {name} is not an index label"
        if not _match(op, stream["labels"].get(name), value):
            return False
    fields = {**stream["structured_metadata"], **stream["labels"]}
    for name, op, value in FILTER.findall(query[selector.end():]):
        assert name in fields, f"{query!r}: {name} is neither a label nor structured metadata"
        if not _match(op, fields.get(name), value):
            return False
    return True


def test_loki_labels_are_small_and_fixed_and_the_readme_queries_work(run_collector, make_sender) -> None:
    with Loki(**LOKI_CONFIG) as loki:
        collector = run_collector(["gateway.yaml", "loki.yaml"], env={"LOKI_ENDPOINT": loki.base_url})
        sender = make_sender(collector.otlp_http_endpoint)
        ids = {sender.audit(outcome="failure", user=f"user{i}") for i in range(3)}
        ids.add(sender.audit(outcome="success"))
        ids.add(send(sender, GRANT))
        ids.add(send(sender, CHANGE))
        wait_ids(loki.snapshot, ids)
        streams = loki.streams()

    label_sets = {tuple(sorted(s["labels"])) for s in streams}
    assert label_sets == {("audit_category", "audit_outcome", "service_name")}
    assert {(s["labels"]["audit_category"], s["labels"]["audit_outcome"]) for s in streams} == {
        ("authentication", "failure"), ("authentication", "success"), ("account_management", "success"),
        ("data_modification", "success")}
    for stream in streams:
        meta = stream["structured_metadata"]
        assert {"audit_event_id", "audit_action", "enduser_id", "client_address", "service_instance_id"} <= set(meta)
        assert not {"audit_category", "audit_outcome"} & set(meta)
    queries = readme_logql()
    assert len(queries) >= 4
    for query in queries:
        assert any(logql_matches(query, s) for s in streams), f"README query matches nothing: {query}"
