"""Scale-out benchmark: audit records/s through agent -> Kafka -> two gateways -> backend stand-in,
against a single gateway without Kafka (and an agent in front of one gateway), same run, same
records, same stand-in.

    python benchmarks/kafka_scaleout.py                    # ~3 minutes: 100000 records per topology
    python benchmarks/kafka_scaleout.py --records 300000 --json

Needs the collector binary (bash .ci/build-collector.sh) and Java 17+ (the broker is started with
.ci/start-kafka.sh on free ports and stopped at the end). Every process runs on this machine: the
load generator, the collectors, the broker and the stand-in share its cores, so the Kafka
topology pays for two more processes (agent, broker) and a second gateway on the same CPUs; the
figures say what this machine sustains per topology, not what separate hosts would.

Load: pre-encoded OTLP/HTTP protobuf requests (500 audit records each, 16 attributes, 8
resources = 8 "processes" with their own service.instance.id, so the agent's resource key spreads
them over the topic's partitions), posted by 4 threads; encoding happens before the clock starts.
Timed: from the first request to the moment the stand-in holds every record ("delivered"); also
when the last request was accepted by the entry collector ("accepted"). Distinct audit.event_id at
the stand-in are counted after the clock stops: all must be there; duplicates are reported.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (  # noqa: E402
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs  # noqa: E402

from tests.collector.conftest import Collector, _locate_collector, wait_until  # noqa: E402
from tests.collector.kafka import KafkaBroker, java_missing  # noqa: E402

PER_REQUEST = 500
RESOURCES = 8
PARTITIONS = 4


# ----------------------------------------------------------------------------------------------
# Load


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def build_requests(total: int) -> tuple[list[bytes], set[str]]:
    """Serialized ExportLogsServiceRequests of PER_REQUEST records each, spread over RESOURCES."""
    bodies, ids = [], set()
    seq = 0
    now = time.time_ns()
    for index in range((total + PER_REQUEST - 1) // PER_REQUEST):
        request = ExportLogsServiceRequest()
        instance = f"shop-web-{index % RESOURCES}"
        rl: ResourceLogs = request.resource_logs.add()
        rl.resource.attributes.extend([_kv("service.name", "shop-web"), _kv("service.instance.id", instance),
                                       _kv("host.name", f"app-host-{index % RESOURCES}"),
                                       _kv("telemetry.sdk.language", "python")])
        sl = rl.scope_logs.add()
        sl.scope.name = "otel_audit"
        sl.scope.version = "0.1.0"
        for _ in range(min(PER_REQUEST, total - seq)):
            seq += 1
            event_id = str(uuid.uuid4())
            ids.add(event_id)
            record: LogRecord = sl.log_records.add()
            record.time_unix_nano = now + seq
            record.observed_time_unix_nano = now + seq
            record.severity_number = 9
            record.severity_text = "INFO"
            record.event_name = "audit.data_modification.update_resource"
            record.body.string_value = "alice update_resource order 4711 success"
            record.attributes.extend([
                _kv("audit.event_id", event_id), _kv("audit.category", "data_modification"),
                _kv("audit.action", "update_resource"), _kv("audit.outcome", "success"),
                _kv("enduser.id", "alice"), _kv("user.name", "alice"), _kv("audit.actor.source", "session"),
                _kv("client.address", "203.0.113.7"), _kv("http.request.method", "PUT"),
                _kv("http.route", "/orders/{order_id}"), _kv("http.response.status_code", 200),
                _kv("audit.target.type", "order"), _kv("audit.target.id", str(4711 + seq)),
                _kv("audit.policy.id", "shop"), _kv("audit.chain.seq", seq),
                _kv("audit.chain.mac", uuid.uuid4().hex + uuid.uuid4().hex),
            ])
        bodies.append(request.SerializeToString())
    return bodies, ids


def post_all(endpoint: str, bodies: list[bytes], threads: int = 4) -> float:
    """POST every body (retrying on refusal, like an SDK would); seconds until the last was accepted."""
    lock = threading.Lock()
    queue = list(reversed(bodies))
    errors: list[str] = []

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            for attempt in range(200):
                req = urllib.request.Request(f"{endpoint}/v1/logs", data=body, method="POST",
                                             headers={"Content-Type": "application/x-protobuf"})
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        if resp.status == 200:
                            break
                except OSError as exc:
                    if attempt == 199:
                        errors.append(repr(exc))
                    time.sleep(0.05)

    start = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} requests never accepted: {errors[:3]}")
    return time.monotonic() - start


# ----------------------------------------------------------------------------------------------
# Backend stand-in: OTLP/HTTP logs, counts records as they come, keeps the bodies for afterwards


class CountingBackend:
    def __init__(self) -> None:
        self.count = 0
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                request = ExportLogsServiceRequest.FromString(raw)
                n = sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
                with backend.lock:
                    backend.count += n
                    backend.bodies.append(raw)
                payload = ExportLogsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        with self.lock:
            self.count, self.bodies = 0, []

    def ids(self) -> list[str]:
        out = []
        for raw in self.bodies:
            for rl in ExportLogsServiceRequest.FromString(raw).resource_logs:
                for sl in rl.scope_logs:
                    for lr in sl.log_records:
                        out.extend(kv.value.string_value for kv in lr.attributes if kv.key == "audit.event_id")
        return out

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------------------------
# Topologies


def backend_env(backend: CountingBackend) -> dict[str, str]:
    return {"GRAFANA_CLOUD_OTLP_ENDPOINT": f"http://127.0.0.1:{backend.port}/otlp", "GRAFANA_CLOUD_BASIC_AUTH": "YmVuY2g6YmVuY2g=",
            "OTEL_AUDIT_LOG_LEVEL": "warn"}


class Run:
    """The processes of one topology; ``entry`` is where the load goes."""

    def __init__(self, binary: str, workdir: Path, topology: str, backend: CountingBackend, kafka: KafkaBroker | None) -> None:
        self.collectors: list[Collector] = []
        self.names: list[str] = []
        gateway = ["gateway.yaml", "grafana-cloud.yaml"]
        env = backend_env(backend)

        def collector(name: str, configs: list[str], extra: dict[str, str]) -> Collector:
            path = workdir / name
            path.mkdir(parents=True)
            c = Collector(binary, configs, path, {**env, **extra}).start()
            self.collectors.append(c)
            self.names.append(name)
            return c

        if topology == "gateway":
            self.entry = collector("gateway", gateway, {})
        elif topology == "agent+gateway":
            gw = collector("gateway", gateway, {})
            self.entry = collector("agent", ["agent.yaml"], {"OTEL_AUDIT_GATEWAY_ENDPOINT": gw.otlp_http_endpoint,
                                                             "OTEL_AUDIT_AGENT_QUEUE_DIR": str(workdir / "agent-q")})
        elif topology == "agent+kafka+2gateways":
            assert kafka is not None
            topic, group = f"bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
            kafka.create_topic(topic, PARTITIONS)
            k = {"OTEL_AUDIT_KAFKA_BROKERS": kafka.bootstrap, "OTEL_AUDIT_KAFKA_TOPIC": topic}
            gateways = [collector(f"gateway-{i}", ["gateway.yaml", "gateway-kafka.yaml", "grafana-cloud.yaml"],
                                  {**k, "OTEL_AUDIT_KAFKA_GROUP": group, "OTEL_AUDIT_KAFKA_CLIENT_ID": f"gateway-{i}"})
                        for i in range(2)]
            wait_until(lambda: {r["CLIENT-ID"] for r in kafka.group(group)} == {"gateway-0", "gateway-1"}, 60, interval=1,
                       what="both gateways in the group")
            del gateways
            self.entry = collector("agent", ["agent-kafka.yaml"], {**k, "OTEL_AUDIT_AGENT_QUEUE_DIR": str(workdir / "agent-q")})
        else:
            raise ValueError(topology)

    def stop(self) -> None:
        for c in reversed(self.collectors):
            c.stop()


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def measure(binary: str, topology: str, bodies: list[bytes], ids: set[str], backend: CountingBackend,
            kafka: KafkaBroker | None, workdir: Path) -> dict[str, Any]:
    backend.reset()
    run = Run(binary, workdir / topology.replace("+", "_"), topology, backend, kafka)
    pids = {name: c.proc.pid for name, c in zip(run.names, run.collectors) if c.proc}
    if kafka and topology.startswith("agent+kafka"):
        pids["kafka-broker"] = int((kafka.workdir / "kafka.pid").read_text())
    try:
        cpu0 = {name: cpu_seconds([pid]) for name, pid in pids.items()}
        start = time.monotonic()
        accepted = post_all(run.entry.otlp_http_endpoint, bodies)
        wait_until(lambda: backend.count >= len(ids), 600, interval=0.05, what=f"{len(ids)} records at the stand-in ({topology})")
        delivered = time.monotonic() - start
        cpu = {name: round(cpu_seconds([pid]) - cpu0[name], 1) for name, pid in pids.items()}
        load = os.getloadavg()[0]
    finally:
        run.stop()
    got = backend.ids()
    distinct = set(got)
    missing = len(ids - distinct)
    return {
        "records": len(ids),
        "accepted_s": round(accepted, 2),
        "delivered_s": round(delivered, 2),
        "records_per_s": round(len(ids) / delivered),
        "accepted_per_s": round(len(ids) / accepted),
        "cpu_s": cpu,  # per process, while the records went through
        "collector_cpu_s": round(sum(cpu.values()), 1),
        # Records per CPU-second of the processes on the path: what a core of this machine carries,
        # less sensitive than records/s to whatever else runs here.
        "records_per_cpu_s": round(len(ids) / max(sum(cpu.values()), 0.001)),
        "gateway_records_per_cpu_s": round(len(ids) / max(sum(v for k, v in cpu.items() if k.startswith("gateway")), 0.001)),
        "load_average_1m": round(load, 1),
        "missing": missing,
        "duplicates": len(got) - len(distinct),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="records per topology (default 100000)")
    parser.add_argument("--topologies", default="gateway,agent+gateway,agent+kafka+2gateways")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    binary, reason = _locate_collector()
    if binary is None:
        print(f"kafka_scaleout: {reason}", file=sys.stderr)
        return 2
    topologies = args.topologies.split(",")
    needs_kafka = any("kafka" in t for t in topologies)
    if needs_kafka and java_missing():
        print(f"kafka_scaleout: {java_missing()}", file=sys.stderr)
        return 2

    print(f"encoding {args.records} records ...", file=sys.stderr)
    bodies, ids = build_requests(args.records)
    print(f"{len(bodies)} requests, {sum(map(len, bodies)) / len(ids):.0f} bytes/record (protobuf)", file=sys.stderr)
    results: dict[str, Any] = {"machine": {"cores": os.cpu_count()}, "records": args.records}
    backend = CountingBackend()
    with tempfile.TemporaryDirectory(prefix="kafka-bench-") as tmp:
        kafka = KafkaBroker(Path(tmp) / "kafka", partitions=PARTITIONS).start() if needs_kafka else None
        try:
            for topology in topologies:
                print(f"== {topology}", file=sys.stderr)
                results[topology] = measure(binary, topology, bodies, ids, backend, kafka, Path(tmp))
                print(json.dumps(results[topology]), file=sys.stderr)
        finally:
            if kafka is not None:
                kafka.stop()
            backend.stop()
    if "gateway" in results and "agent+kafka+2gateways" in results:
        results["ratio_kafka_2gateways_vs_gateway"] = round(
            results["agent+kafka+2gateways"]["records_per_s"] / results["gateway"]["records_per_s"], 2)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'topology':26} {'records/s':>10} {'accepted/s':>11} {'delivered in':>13} {'CPU on path':>12} "
              f"{'rec/CPU-s':>10} {'gw rec/CPU-s':>13} {'missing':>8} {'dups':>6} {'load':>5}")
        for topology in topologies:
            r = results[topology]
            print(f"{topology:26} {r['records_per_s']:>10} {r['accepted_per_s']:>11} {r['delivered_s']:>12}s "
                  f"{r['collector_cpu_s']:>11}s {r['records_per_cpu_s']:>10} {r['gateway_records_per_cpu_s']:>13} "
                  f"{r['missing']:>8} {r['duplicates']:>6} {r['load_average_1m']:>5}")
            print(f"{'':26} CPU s per process: {r['cpu_s']}")
        if "ratio_kafka_2gateways_vs_gateway" in results:
            print(f"agent -> Kafka -> 2 gateways vs a single gateway: {results['ratio_kafka_2gateways_vs_gateway']}x")
    bad = [t for t in topologies if results[t]["missing"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
