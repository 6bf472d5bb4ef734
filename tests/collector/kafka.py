"""A real single-node Apache Kafka (KRaft) for the collector tests and the benchmark.

Started and stopped through ``.ci/start-kafka.sh`` (jars from Maven Central, cached by version)
with its own data directory and free ports, so a run never meets another run's broker. The admin
commands come from the same jars (``kafka-tools``): topics, offsets, consumer groups.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "start-kafka.sh"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def java_missing() -> str | None:
    """Why no broker can run here (Java absent or older than 17), or None."""
    java = shutil.which("java")
    if java is None:
        return "java is not installed: the Kafka tests need a Java 17+ runtime for the Apache Kafka broker"
    out = subprocess.run([java, "-XshowSettings:properties", "-version"], capture_output=True, text=True, timeout=60)
    match = re.search(r"java\.specification\.version = (\d+)", out.stderr + out.stdout)
    if not match or int(match.group(1)) < 17:
        return f"java {match.group(1) if match else '?'} is too old: Apache Kafka 4.x needs Java 17 or newer"
    return None


class KafkaBroker:
    """One broker: ``start()``, ``stop()``, and a few admin commands."""

    def __init__(self, workdir: Path, partitions: int = 4) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.controller_port = _free_port()
        self.env = {
            **os.environ,
            "OTEL_AUDIT_KAFKA_DATA_DIR": str(workdir),
            "OTEL_AUDIT_KAFKA_PORT": str(self.port),
            "OTEL_AUDIT_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "OTEL_AUDIT_KAFKA_PARTITIONS": str(partitions),
        }
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.libs = Path(self._script("--print-libs").stdout.strip().splitlines()[-1])

    def _script(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def start(self) -> "KafkaBroker":
        out = self._script()
        if out.returncode != 0:
            raise RuntimeError(f"{SCRIPT.name} failed ({out.returncode}):\n{out.stderr[-4000:]}")
        assert out.stdout.strip().splitlines()[-1] == self.bootstrap, out.stdout
        return self

    def stop(self) -> None:
        self._script("--stop", timeout=60)

    def running(self) -> bool:
        pid_file = self.workdir / "kafka.pid"
        if not pid_file.exists():
            return False
        try:
            os.kill(int(pid_file.read_text()), 0)
        except (OSError, ValueError):
            return False
        return True

    def tool(self, main_class: str, *args: str, timeout: float = 120) -> str:
        """Run a Kafka command-line tool class against this broker; its stdout."""
        cmd = ["java", "-Xmx256m", "-cp", f"{self.libs}/*", f"-Dlog4j2.configurationFile={self.workdir}/log4j2.properties",
               main_class, "--bootstrap-server", self.bootstrap, *args]
        out = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"{main_class} {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        return out.stdout

    def create_topic(self, name: str, partitions: int, **config: str) -> None:
        """``config``: topic settings with ``_`` for ``.`` (``max_message_bytes="1024"``)."""
        settings = [a for k, v in config.items() for a in ("--config", f"{k.replace('_', '.')}={v}")]
        self.tool("org.apache.kafka.tools.TopicCommand", "--create", "--topic", name,
                  "--partitions", str(partitions), "--replication-factor", "1", *settings)

    def alter_topic(self, name: str, **config: str) -> None:
        settings = ",".join(f"{k.replace('_', '.')}={v}" for k, v in config.items())
        self.tool("org.apache.kafka.tools.ConfigCommand", "--alter", "--entity-type", "topics", "--entity-name", name,
                  "--add-config", settings)

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Partition -> log end offset (messages written to it so far)."""
        out = self.tool("org.apache.kafka.tools.GetOffsetShell", "--topic", topic)
        offsets = {}
        for line in out.split():
            name, partition, offset = line.rsplit(":", 2)
            if name == topic:
                offsets[int(partition)] = int(offset)
        return offsets

    def partition_texts(self, topic: str, count: int) -> dict[int, str]:
        """Partition -> the text of its first ``count`` messages in all (OTLP protobuf printed as
        text: string values such as resource attributes are readable in it)."""
        out = self.tool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--topic", topic, "--from-beginning",
                        "--max-messages", str(count), "--timeout-ms", "15000", "--formatter-property", "print.partition=true",
                        "--group", f"peek-{os.getpid()}-{topic}")
        texts: dict[int, str] = {}
        parts = re.split(r"(?:^|\n)Partition:(\d+)\t", out)
        for partition, value in zip(parts[1::2], parts[2::2]):
            texts[int(partition)] = texts.get(int(partition), "") + value
        return texts

    def group(self, group: str) -> list[dict[str, str]]:
        """One row per partition of the group's topics: TOPIC, PARTITION, CURRENT-OFFSET,
        LOG-END-OFFSET, LAG, CONSUMER-ID, HOST, CLIENT-ID (``-`` where unassigned)."""
        out = self.tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--describe", "--group", group)
        rows, header = [], None
        for line in out.splitlines():
            cells = line.split()
            if not cells:
                continue
            if cells[0] == "GROUP":
                header = cells
                continue
            if header and len(cells) == len(header):
                rows.append(dict(zip(header, cells)))
        return rows
