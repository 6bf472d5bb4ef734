"""Static checks of collector-config/ and `otelcol-audit validate` of every composition."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import BUILD_SCRIPT, CONFIG_DIR

BACKENDS = ["file.yaml", "splunk.yaml", "loki.yaml", "grafana-cloud.yaml", "datadog-otlp.yaml", "datadog.yaml"]
# datadog.yaml needs the datadog exporter, which our build cannot include at this release
# (README.md, "Component substitutions"); it is validated only with a binary that has it.
NEEDS_DATADOG_EXPORTER = {"datadog.yaml"}

# Dummy values for every ${env:...} the configs need without a default.
VALIDATE_ENV = {
    "SPLUNK_HEC_ENDPOINT": "https://splunk.invalid:8088/services/collector/event",
    "SPLUNK_HEC_TOKEN": "00000000-0000-0000-0000-000000000000",
    "LOKI_ENDPOINT": "http://loki.invalid:3100",
    "GRAFANA_CLOUD_OTLP_ENDPOINT": "https://otlp-gateway.invalid/otlp",
    "GRAFANA_CLOUD_BASIC_AUTH": "MTIzNDU2OmdsY19kdW1teQ==",
    "DD_API_KEY": "0123456789abcdef0123456789abcdef",
    "OTEL_AUDIT_GATEWAY_ENDPOINT": "http://gateway.invalid:4318",
    "OTEL_AUDIT_KAFKA_BROKERS": "kafka-0.invalid:9092,kafka-1.invalid:9092",
    "OTEL_AUDIT_GATEWAY_HOSTS": "gateway-0.invalid:4317,gateway-1.invalid:4317",
}

ENV_REF = re.compile(r"\$\{env:([A-Z0-9_]+)(:-[^}]*)?\}")


def load(name: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / name).read_text())


def merged(*names: str) -> dict:
    """What the collector's confmap does with several --config files: maps merge, lists replace."""

    def merge(a: dict, b: dict) -> dict:
        out = dict(a)
        for key, value in b.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
        return out

    result: dict = {}
    for name in names:
        result = merge(result, load(name))
    return result


def audit_pipelines(config: dict) -> dict:
    return {k: v for k, v in config["service"]["pipelines"].items() if k.startswith("logs/audit")}


# ----------------------------------------------------------------------------------------------
# Static checks (no binary needed)


# Backends whose copy is reshaped into the backend's own fields (README.md, "Backend fields"):
# their records are verified from the file journal, not from the backend.
RESHAPING = {"splunk.yaml": {"transform/splunk_metadata", "transform/splunk_cim"},
             "datadog-otlp.yaml": {"transform/datadog_source", "transform/datadog_standard"},
             "datadog.yaml": {"transform/datadog_source"},
             "loki.yaml": {"groupbyattrs/audit_labels"}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_adds_a_complete_audit_pipeline(backend: str) -> None:
    config = merged("gateway.yaml", backend)
    own = {k: v for k, v in audit_pipelines(load(backend)).items()}
    assert len(own) == 1, f"{backend} should add exactly one logs/audit_<backend> pipeline"
    for name, pipeline in audit_pipelines(config).items():
        procs = pipeline["processors"]
        assert pipeline["receivers"] == ["otlp"], name
        # memory limiter first, then the routing filter, then both redaction passes
        assert procs[:4] == ["memory_limiter", "filter/audit_only", "redaction/secrets", "audit_nested_redaction/secrets"], name
        # nothing that acknowledges early in front of a persistent queue
        assert not any(p.split("/")[0] == "batch" for p in procs), name
        # after redaction only the backend's own reshaping (none at all for file and Grafana Cloud)
        allowed = RESHAPING.get(backend, set()) if name in own else set()
        assert set(procs[4:]) == allowed, name


def test_the_file_journal_keeps_records_byte_identical() -> None:
    """The journal `otel-audit verify` reads: no processor that rewrites clean records."""
    (pipeline,) = audit_pipelines(load("file.yaml")).values()
    assert pipeline["processors"] == ["memory_limiter", "filter/audit_only", "redaction/secrets", "audit_nested_redaction/secrets"]


def test_nested_redaction_uses_the_same_patterns() -> None:
    procs = load("gateway.yaml")["processors"]
    nested, top = procs["audit_nested_redaction/secrets"], procs["redaction/secrets"]
    for key in ("blocked_key_patterns", "blocked_values", "allowed_values"):
        assert nested[key] == top[key], key


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "file.yaml"])
def test_backend_exporter_is_durable(backend: str) -> None:
    config = merged("gateway.yaml", backend)
    (pipeline,) = audit_pipelines(load(backend)).values()
    (exporter,) = pipeline["exporters"]
    settings = config["exporters"][exporter]
    queue = settings["sending_queue"]
    assert queue["enabled"] is True
    assert queue["storage"] == "file_storage/audit_queue"
    assert "file_storage/audit_queue" in config["service"]["extensions"]
    retry = settings["retry_on_failure"]
    assert retry["enabled"] is True and retry["max_elapsed_time"] == 0


def test_redaction_keeps_clean_records_identical() -> None:
    redaction = load("gateway.yaml")["processors"]["redaction/secrets"]
    assert redaction["summary"] == "silent"  # no redaction.* attributes
    assert redaction["allow_all_keys"] is True  # nothing deleted
    assert not redaction.get("redact_all_types")
    assert not redaction.get("hash_function")
    assert "url_sanitizer" not in redaction and "db_sanitizer" not in redaction


def test_redaction_patterns_target_secrets_only() -> None:
    redaction = load("gateway.yaml")["processors"]["redaction/secrets"]
    keys = [re.compile(p) for p in redaction["blocked_key_patterns"]]
    values = [re.compile(p) for p in redaction["blocked_values"]]
    allowed = [re.compile(p) for p in redaction["allowed_values"]]

    def key_blocked(key: str) -> bool:
        return any(p.search(key) for p in keys)

    for key in ["password", "user.password", "db.PASSWD", "http.request.header.authorization",
                "http.request.header.cookie", "set-cookie", "client_secret", "api_key", "x-api-key",
                "oauth.access_token", "refresh_token", "token", "secret"]:
        assert key_blocked(key), key
    for key in ["audit.event_id", "audit.category", "audit.chain.mac", "audit.chain.key_id",
                "enduser.id", "client.address", "http.route", "gen_ai.usage.input_tokens",
                "token_count", "session.id", "passport.country", "authorization.decision", "cookies_enabled"]:
        assert not key_blocked(key), key

    def value_masked(value: str) -> bool:
        return any(p.search(value) for p in values)

    for value in ["Authorization: Bearer abc.def.ghi", "password=hunter2", "GET /x?token=abc123&y=1",
                  "Cookie: session=abc; theme=dark", "client_secret: s3cr3t"]:
        assert value_masked(value), value
    # Not masked by default: card numbers, JWTs, bare bearer tokens, AWS keys, PEM, e-mails.
    for value in ["4111 1111 1111 1111", "4111111111111111",
                  "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "Bearer abc.def",
                  "AKIAIOSFODNN7EXAMPLE", "-----BEGIN PRIVATE KEY-----", "alice@example.com",
                  "user alice login success", "authorization granted to role admin"]:
        assert not value_masked(value), value
    for value in ["[REDACTED]", "[REDACTED:secret_key]", "****"]:
        assert any(p.search(value) for p in allowed), value
    # "" must not be allowed: non-string values (header arrays) look like "" to the processor.
    for value in ["hunter2", "", "[REDACTED] hunter2", "**** hunter2"]:
        assert not any(p.search(value) for p in allowed), value


REQUIRED_REF = re.compile(r"\$\{required:([A-Z0-9_]+)\}")


def test_secrets_and_endpoints_come_from_env() -> None:
    """Secrets and backend endpoints come from ${required:...} (no default, empty refused)."""
    secret_keys = {"token", "key", "password", "dd-api-key", "username", "Authorization"}
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        if path.name == "builder-config.yaml":
            continue

        def walk(node, trail=()):
            if isinstance(node, dict):
                for k, v in node.items():
                    yield from walk(v, trail + (str(k),))
            elif isinstance(node, list):
                for v in node:
                    yield from walk(v, trail)
            else:
                yield trail, node

        for trail, value in walk(yaml.safe_load(path.read_text())):
            last = trail[-1] if trail else ""
            if last in secret_keys:
                assert REQUIRED_REF.search(str(value)), f"{path.name}: secret {'.'.join(trail)} = {value!r} must be ${{required:...}}"
            elif last in {"endpoint", "logs_endpoint"} and trail[0] == "exporters":
                assert REQUIRED_REF.search(str(value)) or ENV_REF.search(str(value)), f"{path.name}: {'.'.join(trail)} = {value!r}"


def cache_key() -> str:
    """What .ci/build-collector.sh hashes: the manifest and our components' sources."""
    lines = [hashlib.sha256((CONFIG_DIR / "builder-config.yaml").read_bytes()).hexdigest() + "  -\n"]
    components = CONFIG_DIR / "components"
    files = sorted(p for p in components.rglob("*") if p.is_file() and (p.suffix == ".go" or p.name in ("go.mod", "go.sum"))
                   and not p.name.endswith("_test.go"))
    for p in sorted(files, key=lambda p: "./" + p.relative_to(components).as_posix()):
        lines.append(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  ./{p.relative_to(components).as_posix()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def test_build_script_cache_path_is_keyed_by_manifest_hash(tmp_path: Path) -> None:
    env = {**os.environ, "OTEL_AUDIT_CACHE": str(tmp_path / "cache")}
    env.pop("OTEL_AUDIT_BUILDER_CONFIG", None)
    out = subprocess.run(["bash", str(BUILD_SCRIPT), "--print-path"], env=env, capture_output=True, text=True, timeout=30, check=True)
    digest = cache_key()
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / "cache" / "collector" / digest / "otelcol-audit")
    assert not (tmp_path / "cache" / "collector").exists(), "--print-path must not build"


def test_manifest_is_on_one_release() -> None:
    manifest = load("builder-config.yaml")
    versions = set()
    for kind in ("receivers", "processors", "exporters", "extensions", "connectors", "providers"):
        for entry in manifest.get(kind) or []:
            module, version = entry["gomod"].split()
            if module == "github.com/otel-audit/otelcol-audit/components":
                continue  # ours; its go.mod pins the upstream modules (test below)
            if module.startswith("go.opentelemetry.io/collector/confmap/provider/"):
                major, minor, _ = version.lstrip("v").split(".")
                version = f"v0.{int(minor) + 94}.0"  # stable v1.N.0 ships with v0.(N+94).0
            versions.add(version)
    assert len(versions) == 1, versions


def test_our_components_pin_the_same_release() -> None:
    release = load("builder-config.yaml")["receivers"][0]["gomod"].split()[1]
    gomod = (CONFIG_DIR / "components" / "go.mod").read_text()
    pinned = re.findall(r"^\s*(\S+/(?:collector|opentelemetry-collector-contrib)/\S+) (v\S+)", gomod, re.M)
    assert pinned
    for module, version in pinned:
        if version.startswith("v0."):
            assert version == release, (module, version)


# ----------------------------------------------------------------------------------------------
# The built binary


def _types_used(config: dict) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for kind in ("receivers", "processors", "exporters", "connectors", "extensions"):
        used[kind] = {name.split("/")[0] for name in (config.get(kind) or {})}
    return used


def test_distribution_has_exactly_the_components_the_configs_use(collector_components) -> None:
    used: dict[str, set[str]] = {k: set() for k in ("receivers", "processors", "exporters", "connectors", "extensions")}
    for path in CONFIG_DIR.glob("*.yaml"):
        if path.name in {"builder-config.yaml"} | NEEDS_DATADOG_EXPORTER:
            continue
        for kind, names in _types_used(yaml.safe_load(path.read_text())).items():
            used[kind] |= names
    for kind, names in used.items():
        assert names == collector_components.get(kind, set()), kind
    assert {"env", "file", "required"} <= collector_components["providers"]


COMPOSITIONS = [
    ["gateway.yaml"],
    *[["gateway.yaml", b] for b in BACKENDS],
    ["gateway.yaml", "file.yaml", "splunk.yaml", "loki.yaml", "datadog-otlp.yaml", "grafana-cloud.yaml"],
    ["gateway.yaml", "grafana-cloud.yaml", "splunk.yaml", "file.yaml"],
    ["agent.yaml"],
    ["agent-kafka.yaml"],
    ["agent-loadbalancing.yaml"],
    ["gateway.yaml", "gateway-kafka.yaml"],
    ["gateway.yaml", "gateway-kafka.yaml", "file.yaml", "splunk.yaml"],
    ["gateway.yaml", "grafana-cloud.yaml", "gateway-kafka.yaml", "loki.yaml"],
]


@pytest.mark.parametrize("configs", COMPOSITIONS, ids=["+".join(c) for c in COMPOSITIONS])
def test_validate(collector_bin: str, collector_components, configs: list[str], tmp_path: Path) -> None:
    if NEEDS_DATADOG_EXPORTER & set(configs) and "datadog" not in collector_components["exporters"]:
        pytest.skip("this collector has no datadog exporter (datadog.yaml needs a build that adds it: collector-config/README.md)")
    args = [collector_bin, "validate"]
    for config in configs:
        args += ["--config", str(CONFIG_DIR / config)]
    env = {**os.environ, **VALIDATE_ENV, "OTEL_AUDIT_QUEUE_DIR": str(tmp_path / "q"), "OTEL_AUDIT_FILE_PATH": str(tmp_path / "a.jsonl")}
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validate_rejects_a_broken_config(collector_bin: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("service:\n  pipelines:\n    logs/audit:\n      exporters: [no_such_exporter]\n")
    result = subprocess.run(
        [collector_bin, "validate", "--config", str(CONFIG_DIR / "gateway.yaml"), "--config", str(broken)],
        env={**os.environ, **VALIDATE_ENV}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
