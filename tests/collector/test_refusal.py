"""A backend's refusal loses nothing: records refused with 401/403 (a rotated or revoked token)
stay in the persistent queue and arrive once the backend accepts the credential again.

Upstream otlp_http and splunk_hec treat 400/401/403/413 as permanent and drop the request;
audit_otlp_http / audit_splunk_hec (collector-config/components/refusal) retry it. Each test
rotates the credential a real stand-in accepts, sends failed-login records while it is refused,
checks the log line and the metric that say how many are waiting, restores the credential and
counts every record (duplicates are allowed and counted, losses are not).
"""

from __future__ import annotations

import base64
import re
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from .conftest import DELIVERY_TIMEOUT, wait_until
from .standins import Datadog, GrafanaCloud, Loki, SplunkHEC, StandIn
from .test_e2e import DD_API_KEY, GC_INSTANCE, GC_TOKEN, LOKI_TENANT, SPLUNK_TOKEN

N_REFUSED = 10
WAITING_METRIC = "otelcol_audit_exporter_refused_waiting_log_records"
REFUSED_METRIC = "otelcol_audit_exporter_refused_log_records"


@dataclass
class Backend:
    configs: list[str]
    make: Callable[[], StandIn]
    env: Callable[[StandIn], dict[str, str]]
    rotate: Callable[[StandIn], None]  # the stand-in stops accepting the collector's credential
    restore: Callable[[StandIn], None]
    attrs_key: str = "attributes"
    refusal: int = 403


def _set(attr: str, value: Any) -> Callable[[StandIn], None]:
    return lambda standin: setattr(standin, attr, value)


GC_GOOD = "Basic " + base64.b64encode(f"{GC_INSTANCE}:{GC_TOKEN}".encode()).decode()

BACKENDS = {
    "splunk": Backend(  # HEC: 403 {"text":"Invalid token","code":4}
        ["gateway.yaml", "splunk.yaml"], lambda: SplunkHEC(SPLUNK_TOKEN),
        lambda s: {"SPLUNK_HEC_ENDPOINT": f"{s.base_url}/services/collector/event", "SPLUNK_HEC_TOKEN": SPLUNK_TOKEN},
        _set("token", "the-rotated-token"), _set("token", SPLUNK_TOKEN), attrs_key="fields"),
    "datadog_otlp": Backend(
        ["gateway.yaml", "datadog-otlp.yaml"], lambda: Datadog(DD_API_KEY),
        lambda s: {"DD_OTLP_LOGS_ENDPOINT": f"{s.base_url}/v1/logs", "DD_API_KEY": DD_API_KEY},
        _set("api_key", "f" * 32), _set("api_key", DD_API_KEY)),
    "loki": Backend(
        ["gateway.yaml", "loki.yaml"], lambda: Loki(tenant=LOKI_TENANT),
        lambda s: {"LOKI_ENDPOINT": s.base_url, "LOKI_TENANT_ID": LOKI_TENANT},
        _set("tenant", "another-tenant"), _set("tenant", LOKI_TENANT), refusal=401),
    "grafana_cloud": Backend(
        ["gateway.yaml", "grafana-cloud.yaml"], lambda: GrafanaCloud(GC_INSTANCE, GC_TOKEN),
        lambda s: {"GRAFANA_CLOUD_OTLP_ENDPOINT": f"{s.base_url}/otlp",
                   "GRAFANA_CLOUD_BASIC_AUTH": GC_GOOD.removeprefix("Basic ")},
        _set("expected", "Basic cm90YXRlZA=="), _set("expected", GC_GOOD), refusal=401),
}


def metric(collector, name: str) -> float:
    """Sum of a metric's samples on the collector's own Prometheus endpoint (0 when absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{collector.metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(?:_total)?(?:\{{[^}}]*\}})? ([0-9.e+-]+)$", line)
        if m:
            total += float(m.group(1))
    return total


def ids_at(standin: StandIn, key: str) -> list[str]:
    return [r[key]["audit.event_id"] for r in standin.snapshot() if "audit.event_id" in r[key]]


@pytest.mark.parametrize("name", list(BACKENDS))
def test_refused_records_wait_in_the_queue_and_arrive_after_rotation(run_collector, make_sender, name: str) -> None:
    backend = BACKENDS[name]
    with backend.make() as standin:
        collector = run_collector(backend.configs, env=backend.env(standin))
        sender = make_sender(collector.otlp_http_endpoint)
        first = sender.audit(user="before")
        wait_until(lambda: first in ids_at(standin, backend.attrs_key), DELIVERY_TIMEOUT, what="the first record")

        backend.rotate(standin)
        refused = {sender.audit(outcome="failure", user=f"mallory{i}") for i in range(N_REFUSED)}
        wait_until(lambda: backend.refusal in standin.statuses(), DELIVERY_TIMEOUT, what=f"an HTTP {backend.refusal}")
        # The collector says so: a log line, and a gauge of the records waiting.
        wait_until(lambda: metric(collector, WAITING_METRIC) == N_REFUSED, DELIVERY_TIMEOUT, what=f"{WAITING_METRIC} == {N_REFUSED}")
        assert "backend refused audit records" in collector.log()
        assert metric(collector, REFUSED_METRIC) >= N_REFUSED  # counted per refusal: retries add up
        assert not refused & set(ids_at(standin, backend.attrs_key))

        backend.restore(standin)
        wait_until(lambda: refused <= set(ids_at(standin, backend.attrs_key)), DELIVERY_TIMEOUT * 2,
                   what=f"the {N_REFUSED} refused records after the credential is back")
        wait_until(lambda: metric(collector, WAITING_METRIC) == 0, DELIVERY_TIMEOUT, what="no record waiting")
        assert "backend accepts audit records again" in collector.log()
        counts = Counter(ids_at(standin, backend.attrs_key))
    assert set(counts) == refused | {first}, "lost or foreign records"
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= N_REFUSED, f"{duplicates} duplicates: a refused request must be resent, not multiplied"


def test_splunk_token_rotated_while_the_collector_restarts(run_collector, make_sender) -> None:
    """The issue's case: HEC answers 403 (token rotated), the gateway is restarted with the new
    token, and every record queued under the old token reaches Splunk."""
    with SplunkHEC("new-token") as splunk:
        env = {"SPLUNK_HEC_ENDPOINT": f"{splunk.base_url}/services/collector/event", "SPLUNK_HEC_TOKEN": SPLUNK_TOKEN}
        collector = run_collector(["gateway.yaml", "splunk.yaml"], env=env)
        sender = make_sender(collector.otlp_http_endpoint)
        refused = {sender.audit(outcome="failure", user=f"mallory{i}") for i in range(N_REFUSED)}
        wait_until(lambda: 403 in splunk.statuses(), DELIVERY_TIMEOUT, what="HEC's 403")
        assert collector.stop() == 0, collector.log()
        collector.env["SPLUNK_HEC_TOKEN"] = "new-token"
        collector.start()
        wait_until(lambda: refused <= set(ids_at(splunk, "fields")), DELIVERY_TIMEOUT * 2, what="the queued records")
