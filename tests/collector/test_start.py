"""Configs that validate also start: every documented stack, in several orders, becomes healthy;
a required variable that is unset or empty stops `validate` and the start, naming it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import CONFIG_DIR
from .test_configs import VALIDATE_ENV

BACKENDS = ["file.yaml", "splunk.yaml", "loki.yaml", "grafana-cloud.yaml", "datadog-otlp.yaml"]
STACKS = [
    ["gateway.yaml"],
    *[["gateway.yaml", b] for b in BACKENDS],
    ["gateway.yaml", *BACKENDS],
    ["gateway.yaml", *reversed(BACKENDS)],
    # the orders that used to validate and then fail at start (`authenticator
    # "basicauth/grafana_cloud" not found`): grafana-cloud.yaml before the others, or before the gateway
    ["gateway.yaml", "grafana-cloud.yaml", "file.yaml", "loki.yaml"],
    ["grafana-cloud.yaml", "gateway.yaml", "splunk.yaml"],
    ["agent.yaml"],
    # scaling out: brokers and gateways point at nothing too (records wait in the queues)
    ["agent-kafka.yaml"],
    ["agent-loadbalancing.yaml"],
    ["gateway.yaml", "gateway-kafka.yaml", "file.yaml"],
    ["gateway.yaml", "splunk.yaml", "gateway-kafka.yaml", "grafana-cloud.yaml"],
]

# Which required variable each file needs (its ${required:...} references).
REQUIRED = {
    "splunk.yaml": ["SPLUNK_HEC_ENDPOINT", "SPLUNK_HEC_TOKEN"],
    "loki.yaml": ["LOKI_ENDPOINT"],
    "grafana-cloud.yaml": ["GRAFANA_CLOUD_OTLP_ENDPOINT", "GRAFANA_CLOUD_BASIC_AUTH"],
    "datadog-otlp.yaml": ["DD_API_KEY"],
    "agent.yaml": ["OTEL_AUDIT_GATEWAY_ENDPOINT"],
    "agent-kafka.yaml": ["OTEL_AUDIT_KAFKA_BROKERS"],
    "agent-loadbalancing.yaml": ["OTEL_AUDIT_GATEWAY_HOSTS"],
    "gateway-kafka.yaml": ["OTEL_AUDIT_KAFKA_BROKERS"],
}


@pytest.mark.parametrize("configs", STACKS, ids=["+".join(c) for c in STACKS])
def test_documented_stack_starts_healthy(run_collector, configs: list[str]) -> None:
    # Endpoints point at nothing: starting must not depend on a reachable backend.
    collector = run_collector(configs, env=VALIDATE_ENV)
    assert collector.proc is not None and collector.proc.poll() is None
    assert collector.stop() == 0, collector.log()


def test_every_required_reference_is_listed() -> None:
    """REQUIRED above is what the files say (so the next test covers every variable)."""
    import re

    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        found = sorted(set(re.findall(r"\$\{required:([A-Z0-9_]+)\}", path.read_text())))
        if path.name in ("datadog.yaml", "builder-config.yaml"):
            continue  # datadog.yaml needs a build with the datadog exporter (README.md)
        assert found == sorted(REQUIRED.get(path.name, [])), path.name


CASES = [(f, v, state) for f, names in REQUIRED.items() for v in names for state in ("unset", "empty")]


@pytest.mark.parametrize("config,variable,state", CASES, ids=[f"{c}-{v}-{s}" for c, v, s in CASES])
def test_missing_required_variable_fails_loudly(collector_bin: str, tmp_path: Path, config: str, variable: str, state: str) -> None:
    env = {**os.environ, **VALIDATE_ENV, "OTEL_AUDIT_QUEUE_DIR": str(tmp_path / "q")}
    if state == "unset":
        env.pop(variable, None)
    else:
        env[variable] = "  "
    stack = [config] if config.startswith("agent") else ["gateway.yaml", config]
    args = [a for c in stack for a in ("--config", str(CONFIG_DIR / c))]
    for command in ([collector_bin, "validate", *args], [collector_bin, *args]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0, f"{command[1]} accepted {variable} {state}"
        expected = "is not set" if state == "unset" else "is empty"
        assert f"environment variable {variable} is required by this configuration but {expected}" in result.stderr
