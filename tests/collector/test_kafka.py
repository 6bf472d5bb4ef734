"""Scaling out with Kafka: agent (agent-kafka.yaml) -> a real Apache Kafka broker (KRaft) -> two
gateways in one consumer group (gateway.yaml + gateway-kafka.yaml + grafana-cloud.yaml) -> one
backend stand-in, proven lossless while a gateway is killed with SIGKILL and the backend is down.

The broker is started by ``.ci/start-kafka.sh`` on free ports with its own data directory and
stopped at the end of the module. Without Java (17+) the module skips, saying so; without the
collector binary the collector fixtures skip as everywhere in tests/collector.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from .conftest import DELIVERY_TIMEOUT, REPO, Collector, wait_until
from .kafka import KafkaBroker, java_missing
from .standins import GrafanaCloud

GC_INSTANCE, GC_TOKEN = "918273", "glc_eyJvIjoiMTIzIn0"
GC_BASIC = base64.b64encode(f"{GC_INSTANCE}:{GC_TOKEN}".encode()).decode()
APP = REPO / "examples" / "flask_app" / "app.py"
CHAIN_KEY = "kafka-test-chain-key-0123456789"
PARTITIONS = 4
QUEUE_METRIC = re.compile(r'^otelcol_exporter_queue_size\{[^}]*exporter="audit_otlp_http/grafana_cloud"[^}]*\} (\S+)$', re.M)


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    reason = java_missing()
    if reason:
        pytest.skip(reason)
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
    assert not broker.running(), "the Kafka broker is still running after --stop"


def kafka_env(kafka: KafkaBroker, topic: str, **extra: str) -> dict[str, str]:
    return {"OTEL_AUDIT_KAFKA_BROKERS": kafka.bootstrap, "OTEL_AUDIT_KAFKA_TOPIC": topic, **extra}


def gateway_env(kafka: KafkaBroker, topic: str, group: str, client_id: str, backend: GrafanaCloud) -> dict[str, str]:
    return kafka_env(
        kafka, topic,
        OTEL_AUDIT_KAFKA_GROUP=group,
        OTEL_AUDIT_KAFKA_CLIENT_ID=client_id,
        # The broker's group.min.session.timeout.ms is 6 s: the quickest hand-over it allows.
        OTEL_AUDIT_KAFKA_SESSION_TIMEOUT="6s",
        GRAFANA_CLOUD_OTLP_ENDPOINT=f"{backend.base_url}/otlp",
        GRAFANA_CLOUD_BASIC_AUTH=GC_BASIC,
    )


GATEWAY = ["gateway.yaml", "gateway-kafka.yaml", "grafana-cloud.yaml"]


def event_ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["attributes"]["audit.event_id"] for r in records if "audit.event_id" in r["attributes"]]


def backend_queue_size(collector: Collector) -> float | None:
    """The gateway's grafana_cloud persistent queue length (its own Prometheus metrics)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{collector.metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    match = QUEUE_METRIC.search(text)
    return float(match.group(1)) if match else None


def consumed_to_the_end(kafka: KafkaBroker, group: str, topic: str) -> list[dict[str, str]] | None:
    """The group's rows once its committed offset is the log end of every partition with data."""
    ends = kafka.end_offsets(topic)
    committed = {int(r["PARTITION"]): r["CURRENT-OFFSET"] for r in kafka.group(group)}
    done = all(committed.get(p) == str(end) for p, end in ends.items() if end)
    print(f"offsets: end {ends} committed {committed}")
    return [ends, committed] if done else None


def sigkill(collector: Collector) -> None:
    assert collector.proc is not None
    collector.proc.kill()
    collector.proc.wait(timeout=10)
    collector.proc = None


# ----------------------------------------------------------------------------------------------
# Static checks of the configs (no broker, no binary)


def _load(name: str) -> dict[str, Any]:
    import yaml

    from .conftest import CONFIG_DIR

    return yaml.safe_load((CONFIG_DIR / name).read_text())


def test_agent_kafka_is_durable_ordered_and_keyed_by_resource() -> None:
    config = _load("agent-kafka.yaml")
    (pipeline,) = config["service"]["pipelines"].values()
    assert pipeline["processors"] == ["memory_limiter"]  # nothing that acknowledges early, nothing that rewrites
    (name,) = pipeline["exporters"]
    kafka = config["exporters"][name]
    assert name.split("/")[0] == "audit_kafka"  # a broker's refusal is retried, not dropped
    assert kafka["logs"]["encoding"] == "otlp_proto"
    assert kafka["partition_logs_by_resource_attributes"] is True and not kafka.get("partition_logs_by_trace_id")
    assert kafka["producer"]["required_acks"] == -1
    assert kafka["producer"]["allow_auto_topic_creation"] is False
    queue = kafka["sending_queue"]
    assert queue["enabled"] is True and queue["storage"] == "file_storage/agent_queue"
    assert queue["num_consumers"] == 1  # batches leave in queue order: a chain stays in order on its partition
    assert queue["batch"]["sizer"] == "bytes" and queue["batch"]["max_size"] < kafka["producer"]["max_message_bytes"]
    assert kafka["retry_on_failure"]["enabled"] is True and kafka["retry_on_failure"]["max_elapsed_time"] == 0
    assert "file_storage/agent_queue" in config["service"]["extensions"]


def test_gateway_kafka_marks_a_message_only_once_the_queues_have_it() -> None:
    config = _load("gateway-kafka.yaml")
    gateway = _load("gateway.yaml")
    receiver = config["receivers"]["kafka/audit"]
    assert receiver["initial_offset"] == "earliest"
    assert receiver["logs"]["encoding"] == "otlp_proto"
    assert receiver["message_marking"]["after"] is True and receiver["message_marking"]["on_error"] is False
    assert receiver["error_backoff"]["enabled"] is True and receiver["error_backoff"]["max_elapsed_time"] == 0
    # The same topic by default as the agents write.
    assert receiver["logs"]["topics"] == [_load("agent-kafka.yaml")["exporters"]["audit_kafka/audit"]["logs"]["topic"]]
    (pipeline,) = config["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["kafka/audit"] and pipeline["processors"] == ["memory_limiter"]
    (name,) = pipeline["exporters"]
    loopback = config["exporters"][name]
    # No queue, no retries of its own: the answer of the OTLP receiver goes back to the kafka receiver.
    assert loopback["sending_queue"] == {"enabled": False} and loopback["retry_on_failure"] == {"enabled": False}
    assert name.split("/")[0] == "audit_otlp_http"  # a 4xx is retried, not dropped
    http_port = gateway["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":", 1)[1]
    assert loopback["endpoint"].endswith(":" + http_port), (loopback["endpoint"], http_port)
    # It adds no receiver to gateway.yaml's pipelines and no extension (lists a later file would replace).
    assert set(config) == {"receivers", "exporters", "service"} and set(config["service"]) == {"pipelines"}


def test_loadbalancing_agent_retries_from_its_persistent_queue() -> None:
    config = _load("agent-loadbalancing.yaml")
    (pipeline,) = config["service"]["pipelines"].values()
    assert pipeline["processors"] == ["memory_limiter"]
    (name,) = pipeline["exporters"]
    lb = config["exporters"][name]
    assert lb["sending_queue"]["enabled"] is True and lb["sending_queue"]["storage"] == "file_storage/agent_queue"
    assert lb["retry_on_failure"]["enabled"] is True and lb["retry_on_failure"]["max_elapsed_time"] == 0
    inner = lb["protocol"]["otlp"]
    assert inner["sending_queue"] == {"enabled": False} and inner["retry_on_failure"] == {"enabled": False}


# ----------------------------------------------------------------------------------------------
# The path works, and keeps a process's records on one partition


def test_agent_to_kafka_to_gateway_keys_by_resource(kafka: KafkaBroker, run_collector, make_sender, tmp_path: Path) -> None:
    """Records sent before the topic exists wait in the agent's queue; records of one resource
    (one process) land on one partition, other processes spread out; a gateway started after
    them reads them all in its new group and delivers every audit record, app logs stay out."""
    topic, group = f"audit-{uuid.uuid4().hex[:8]}", f"gw-{uuid.uuid4().hex[:8]}"
    with GrafanaCloud(GC_INSTANCE, GC_TOKEN) as backend:
        agent = run_collector(["agent-kafka.yaml"], env=kafka_env(kafka, topic, OTEL_AUDIT_AGENT_QUEUE_DIR=str(tmp_path / "agent-q")))
        senders = [make_sender(agent.otlp_http_endpoint, resource={"service.name": "checkout", "service.instance.id": f"proc-{i}"})
                   for i in range(6)]
        sent: dict[str, str] = {}
        app_markers = set()
        for round_ in range(5):
            for i, sender in enumerate(senders):
                sent[sender.audit(outcome="failure" if round_ % 2 else "success")] = f"proc-{i}"
            app_markers.add(senders[0].app())
        time.sleep(3)  # the agent tries, the topic is not there (no auto-creation): nothing is written
        assert topic not in kafka.tool("org.apache.kafka.tools.TopicCommand", "--list").split()
        kafka.create_topic(topic, PARTITIONS)
        gateway = run_collector(GATEWAY, env=gateway_env(kafka, topic, group, "gateway-a", backend))
        records = wait_until(lambda: (lambda r: r if set(sent) <= set(event_ids(r)) else None)(backend.snapshot()),
                             DELIVERY_TIMEOUT, what="every audit record at the backend")
        gateway.stop()
        agent.stop()

    assert not any(r["attributes"].get("app.marker") in app_markers for r in records), "app logs reached the audit backend"
    by_instance = {r["resource"]["service.instance.id"] for r in records}
    assert by_instance == {f"proc-{i}" for i in range(6)}
    # One message per resource and batch, keyed by the resource: each process's records are on
    # exactly one partition (which one is the hash's choice), and the processes spread out.
    offsets = kafka.end_offsets(topic)
    texts = kafka.partition_texts(topic, sum(offsets.values()))
    where = {f"proc-{i}": {p for p, text in texts.items() if f"proc-{i}" in text} for i in range(6)}
    assert all(len(partitions) == 1 for partitions in where.values()), where
    assert len(set().union(*where.values())) >= 2, where
    # The group consumed every message and committed its offsets.
    rows = kafka.group(group)
    assert {int(r["PARTITION"]) for r in rows} == {p for p, n in offsets.items() if n}, rows
    assert all(r["CURRENT-OFFSET"] == r["LOG-END-OFFSET"] for r in rows), rows


def test_broker_refusal_waits_in_the_agent_queue(kafka: KafkaBroker, run_collector, make_sender, tmp_path: Path) -> None:
    """A topic that refuses the agent's batches (MESSAGE_TOO_LARGE, not retriable: upstream kafka
    would drop them) holds nothing back for good: audit_kafka logs the refusal, keeps the records
    queued and retries; once the topic's limit is raised, every record arrives."""
    topic, group = f"audit-{uuid.uuid4().hex[:8]}", f"gw-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(topic, 1, max_message_bytes="1024")
    with GrafanaCloud(GC_INSTANCE, GC_TOKEN) as backend:
        agent = run_collector(["agent-kafka.yaml"], env=kafka_env(kafka, topic, OTEL_AUDIT_AGENT_QUEUE_DIR=str(tmp_path / "agent-q")))
        gateway = run_collector(GATEWAY, env=gateway_env(kafka, topic, group, "gateway-a", backend))
        sender = make_sender(agent.otlp_http_endpoint)
        # Incompressible padding: every message is above the topic's 1 KiB even with lz4.
        sent = {sender.audit(outcome="failure", **{"app.padding": uuid.uuid4().hex * 40}) for _ in range(20)}
        wait_until(lambda: "backend refused audit records" in agent.log() and "MESSAGE_TOO_LARGE" in agent.log(),
                   DELIVERY_TIMEOUT, what="the agent's refusal warning")
        assert kafka.end_offsets(topic) == {0: 0}, "the topic took a message it should have refused"
        assert not backend.snapshot()
        kafka.alter_topic(topic, max_message_bytes="1048588")
        records = wait_until(lambda: (lambda r: r if sent <= set(event_ids(r)) else None)(backend.snapshot()),
                             90, what="every refused record at the backend once the limit is raised")
        wait_until(lambda: "backend accepts audit records again" in agent.log(), 30, what="the agent's all-clear")
        gateway.stop()
        agent.stop()
    assert set(event_ids(records)) == sent


# ----------------------------------------------------------------------------------------------
# The lossless proof


class App:
    """The Flask notes example under opentelemetry-instrument, exporting to the agent, with its
    own spool and chain, and a thread that drives CRUD requests until told to stop."""

    def __init__(self, procs: Any, tmp_path: Path, index: int, agent: Collector) -> None:
        self.port = procs.free_port()
        self.index = index
        env = procs.base_env(
            PORT=str(self.port),
            NOTES_DB=str(tmp_path / f"notes-{index}.db"),
            OTEL_SERVICE_NAME="notes",
            OTEL_RESOURCE_ATTRIBUTES=f"service.instance.id=notes-{index}-{uuid.uuid4().hex[:6]}",
            OTEL_LOGS_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=agent.otlp_http_endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_BLRP_SCHEDULE_DELAY="100",
            OTEL_AUDIT_CHAIN_KEY=CHAIN_KEY,
            OTEL_AUDIT_CHAIN_KEY_ID="kafka-test",
            OTEL_AUDIT_SPOOL_DIR=str(tmp_path / f"spool-{index}"),
            OTEL_AUDIT_QUIET="true",
            HOME=str(tmp_path),
        )
        self.server = procs.Server([procs.launcher(), sys.executable, str(APP)], env, f"http://127.0.0.1:{self.port}/",
                                   log_path=tmp_path / f"app-{index}.log")
        self.requests = 0
        self.iterations = 0  # completed create/read/delete rounds: one create and one delete record each
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._drive, name=f"drive-{index}", daemon=True)

    def _drive(self) -> None:
        base = f"http://127.0.0.1:{self.port}"
        s = requests.Session()
        try:
            assert s.post(f"{base}/login", data={"username": "alice", "password": "correct horse"},
                          allow_redirects=False).status_code == 302
            self.requests += 1
            while not self.stopping.is_set():
                note = s.post(f"{base}/notes", json={"title": "t", "body": "b"}, timeout=10).json()["id"]
                assert s.get(f"{base}/notes/{note}", timeout=10).status_code == 200
                assert s.delete(f"{base}/notes/{note}", timeout=10).status_code == 204
                self.requests += 3
                self.iterations += 1
        except Exception as exc:  # reported by the test
            self.errors.append(repr(exc))


def test_two_gateways_one_killed_backend_down_nothing_lost(kafka: KafkaBroker, run_collector, tmp_path: Path) -> None:
    """Four instrumented app processes -> agent-kafka.yaml -> Kafka (4 partitions) -> two gateways
    in one consumer group -> one backend. The backend is stopped, then the gateway holding the most
    data is SIGKILLed while the apps keep writing; the survivor takes its partitions; the backend
    comes back; later the killed gateway starts again on its old queue. Exactly one record per
    audited action arrives, duplicates are counted and removable, every chain verifies closed."""
    procs = pytest.importorskip("tests.support.procs")
    pytest.importorskip("flask")
    topic, group = f"audit-{uuid.uuid4().hex[:8]}", f"gw-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(topic, PARTITIONS)
    backend = GrafanaCloud(GC_INSTANCE, GC_TOKEN).start()
    apps: list[App] = []
    try:
        agent = run_collector(["agent-kafka.yaml"], env=kafka_env(kafka, topic, OTEL_AUDIT_AGENT_QUEUE_DIR=str(tmp_path / "agent-q")))
        gateways = {name: run_collector(GATEWAY, env=gateway_env(kafka, topic, group, name, backend))
                    for name in ("gateway-a", "gateway-b")}
        # Both gateways are in the group, each with a share of the partitions.
        wait_until(lambda: (lambda rows: {r["CLIENT-ID"] for r in rows} == set(gateways))(kafka.group(group)),
                   60, interval=1, what="both gateways owning partitions")

        # 1. A burst from four instrumented app processes (four chains, four resources).
        apps = [App(procs, tmp_path, i, agent) for i in range(4)]
        for app in apps:
            app.server.wait_ready()
        for app in apps:
            app.thread.start()
        wait_until(lambda: len(backend.snapshot()) >= 300, DELIVERY_TIMEOUT, what="records flowing to the backend")

        # 2. The backend goes down: records pile up in the gateways' persistent queues.
        backend.stop()
        time.sleep(4)  # > autocommit interval: offsets of what is queued are committed

        # 3. Mid-stream, SIGKILL the gateway that owns the most partitions with data.
        offsets = kafka.end_offsets(topic)
        owners = {int(r["PARTITION"]): r["CLIENT-ID"] for r in kafka.group(group)}
        used = [p for p, n in offsets.items() if n]
        load = {name: sum(offsets[p] for p in used if owners.get(p) == name) for name in gateways}
        victim_name = max(load, key=load.get)
        assert load[victim_name] > 0, (offsets, owners)
        victim, survivor = gateways[victim_name], next(g for n, g in gateways.items() if n != victim_name)
        survivor_name = next(n for n in gateways if n != victim_name)
        requests_at_kill = sum(app.requests for app in apps)
        sigkill(victim)
        assert any(victim.queue_dir.iterdir()), "the killed gateway has nothing on disk"

        # 4. Traffic goes on; the group hands the dead gateway's partitions to the survivor.
        wait_until(lambda: (lambda rows: rows and {r["CLIENT-ID"] for r in rows} == {survivor_name})(kafka.group(group)),
                   60, interval=1, what="the survivor owning every partition")
        time.sleep(2)
        assert sum(app.requests for app in apps) > requests_at_kill, "the apps stopped writing: not mid-stream"
        for app in apps:
            app.stopping.set()
        for app in apps:
            app.thread.join(timeout=30)
            assert not app.errors, (app.index, app.errors, app.server.output())
            assert app.server.stop(sig=2, timeout=30) == 0, app.server.output()  # SIGINT: flush, stop record
        sent_requests = sum(app.requests for app in apps)
        iterations = sum(app.iterations for app in apps)

        # 5. The backend comes back on the same address: the survivor delivers what it holds.
        backend.start()  # same object: what it took before the outage stays in its records
        wait_until(lambda: consumed_to_the_end(kafka, group, topic), 120, interval=1,
                   what="the survivor consuming every partition to the end")
        wait_until(lambda: backend_queue_size(survivor) == 0, 120, what="the survivor's backend queue to drain")
        time.sleep(1)
        before_restart = set(event_ids(backend.snapshot()))

        # 6. The killed gateway starts again on its old volume and delivers what only it had.
        victim.start()
        wait_until(lambda: backend_queue_size(victim) == 0, 120, what="the restarted gateway's backend queue to drain")
        time.sleep(2)
        for gateway in gateways.values():
            gateway.stop()
        agent.stop()
    finally:
        for app in apps:
            app.stopping.set()
            app.server.stop(sig=9, timeout=5)
        backend.stop()

    records = backend.snapshot()
    ids = event_ids(records)
    distinct = set(ids)
    duplicates = len(ids) - len(distinct)
    print(f"\nkafka lossless: {sent_requests} requests, {len(distinct)} distinct audit records, {duplicates} duplicates, "
          f"{len(distinct - before_restart)} delivered only by the restarted {victim_name}")

    # Every chain verifies on the backend's copy: all records there, none changed, each chain
    # closed by its stop record (so its tail is complete too). Delivery through two gateways and
    # a restarted queue does not keep file order: --allow-reorder.
    journal = tmp_path / "backend.jsonl"
    backend.write_otlp_json(journal)
    verify = subprocess.run(
        [sys.executable, "-m", "otel_audit.cli", "verify", str(journal), "--allow-reorder", "--expect-closed", "--json"],
        env={**procs.base_env(), "OTEL_AUDIT_CHAIN_KEY": CHAIN_KEY, "OTEL_AUDIT_CHAIN_KEY_ID": "kafka-test"},
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert verify.returncode == 0, verify.stdout[-4000:] + verify.stderr[-2000:]
    report = json.loads(verify.stdout)
    assert report["chains"] == len(apps), report["chain_states"]
    assert {s["state"] for s in report["chain_states"]} == {"closed"}, report["chain_states"]
    assert report["records"] - report["duplicates"] == len(distinct), report
    assert report["duplicates"] == duplicates

    # Exactly one record per audited action of the drive (the policy does not audit the reads).
    unique = {r["attributes"]["audit.event_id"]: r for r in records}.values()
    by_event = Counter(r["event_name"] for r in unique)
    assert by_event["audit.data_modification.create_resource"] == iterations, by_event
    assert by_event["audit.data_modification.delete_resource"] == iterations, by_event
    assert by_event["audit.authentication.login"] == len(apps), by_event
    assert distinct - before_restart, "the killed gateway's queue held nothing that only it had: the scenario did not bite"

    # Duplicates are removable: keep the first copy of each audit.event_id, and the trail is the
    # same trail with no duplicate left.
    deduped = tmp_path / "backend-deduped.jsonl"
    assert backend.write_otlp_json(deduped, dedupe=True) == len(distinct)
    clean = subprocess.run(
        [sys.executable, "-m", "otel_audit.cli", "verify", str(deduped), "--allow-reorder", "--expect-closed", "--json"],
        env={**procs.base_env(), "OTEL_AUDIT_CHAIN_KEY": CHAIN_KEY, "OTEL_AUDIT_CHAIN_KEY_ID": "kafka-test"},
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert clean.returncode == 0, clean.stdout[-4000:]
    clean_report = json.loads(clean.stdout)
    assert clean_report["duplicates"] == 0 and clean_report["records"] == len(distinct), clean_report


# ----------------------------------------------------------------------------------------------
# Without Kafka: the loadbalancing exporter in front of a gateway pool


ACCEPTED_METRIC = re.compile(r'^otelcol_receiver_accepted_log_records(?:_total)?\{[^}]*receiver="otlp"[^}]*transport="grpc"[^}]*\} (\S+)$', re.M)


def accepted_over_grpc(collector: Collector) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{collector.metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(v) for v in ACCEPTED_METRIC.findall(text))


def test_loadbalancing_agent_spreads_and_survives_a_killed_gateway(run_collector, make_sender, tmp_path: Path) -> None:
    """agent-loadbalancing.yaml -> two gateways (OTLP/gRPC) -> one backend: both gateways get
    records; one is killed with SIGKILL mid-stream and started again; every record arrives."""
    with GrafanaCloud(GC_INSTANCE, GC_TOKEN) as backend:
        env = {"GRAFANA_CLOUD_OTLP_ENDPOINT": f"{backend.base_url}/otlp", "GRAFANA_CLOUD_BASIC_AUTH": GC_BASIC}
        gateways = [run_collector(["gateway.yaml", "grafana-cloud.yaml"], env=env) for _ in range(2)]
        hosts = ",".join(f"127.0.0.1:{g.grpc_port}" for g in gateways)
        for g in gateways:
            g.ports_published = True  # the agent points at these ports: a restart keeps them
        agent = run_collector(["agent-loadbalancing.yaml"], env={
            "OTEL_AUDIT_GATEWAY_HOSTS": hosts, "OTEL_AUDIT_GATEWAY_INSECURE": "true",
            "OTEL_AUDIT_AGENT_QUEUE_DIR": str(tmp_path / "agent-q")})
        sender = make_sender(agent.otlp_http_endpoint)
        sent = {sender.audit() for _ in range(150)}
        wait_until(lambda: all(accepted_over_grpc(g) > 0 for g in gateways), DELIVERY_TIMEOUT,
                   what="records at both gateways")
        sigkill(gateways[0])
        sent |= {sender.audit(outcome="failure") for _ in range(150)}
        time.sleep(1)
        gateways[0].start()
        sent |= {sender.audit() for _ in range(50)}
        records = wait_until(lambda: (lambda r: r if sent <= set(event_ids(r)) else None)(backend.snapshot()),
                             90, what="every audit record at the backend")
        assert accepted_over_grpc(gateways[0]) > 0 and accepted_over_grpc(gateways[1]) > 0
        for g in (agent, *gateways):
            g.stop()
    ids = event_ids(records)
    print(f"\nloadbalancing: {len(sent)} sent, {len(set(ids))} distinct at the backend, {len(ids) - len(set(ids))} duplicates")


def test_helm_overlay_for_kafka_gateways() -> None:
    """values-gateway.yaml + values-gateway-kafka.yaml as Helm merges them (maps merge, lists are
    replaced): still a StatefulSet with the queue on its volume, gateway-kafka.yaml in the configs,
    every required variable set, secrets from a Secret, one Kafka client id per pod."""
    import yaml

    from .conftest import CONFIG_DIR

    def merge(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            return {**a, **{k: merge(a.get(k), v) for k, v in b.items()}}
        return b

    helm = CONFIG_DIR / "helm"
    values = merge(yaml.safe_load((helm / "values-gateway.yaml").read_text()),
                   yaml.safe_load((helm / "values-gateway-kafka.yaml").read_text()))
    assert values["mode"] == "statefulset"
    env = {e["name"]: e for e in values["extraEnvs"]}
    mounts = {m["name"]: m["mountPath"] for m in values["extraVolumeMounts"]}
    claims = {c["metadata"]["name"] for c in values["statefulset"]["volumeClaimTemplates"]}
    assert any(env["OTEL_AUDIT_QUEUE_DIR"]["value"].startswith(mounts[c] + "/") for c in claims)
    configs = [a.split("=", 1)[1].rsplit("/", 1)[1] for a in values["command"]["extraArgs"] if a.startswith("--config=")]
    assert configs[:2] == ["gateway.yaml", "gateway-kafka.yaml"]
    required: set[str] = set()
    for config in configs:
        required |= set(re.findall(r"\$\{required:([A-Z0-9_]+)\}", (CONFIG_DIR / config).read_text()))
    assert "OTEL_AUDIT_KAFKA_BROKERS" in required and required <= set(env), required - set(env)
    for name in required:
        if re.search(r"TOKEN|KEY|AUTH", name):
            assert "secretKeyRef" in env[name].get("valueFrom", {}), name
    assert env["OTEL_AUDIT_KAFKA_CLIENT_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # Everything the base sets is still set (the overlay repeats the replaced list).
    base = {e["name"] for e in yaml.safe_load((helm / "values-gateway.yaml").read_text())["extraEnvs"]}
    assert base <= set(env), base - set(env)
