"""Audit storage as code (collector-config/terraform, collector-config/helm): parsed with a real
HCL parser (python-hcl2), checked by a static analyser (checkov) where it has rules, and held to
what the docs promise: PCI DSS 10.5.1 retention (12 months kept, 3 searchable), who may read,
and Helm values that keep the queue on a persistent volume with our configs mounted.

`terraform validate` needs the providers (`terraform init`), which cannot be fetched here;
`terraform fmt -check` (syntax, no providers) runs when terraform is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CONFIG_DIR
from .test_backend_fields import LOKI_CONFIG

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is in the test extra (pyproject.toml)")

TF = CONFIG_DIR / "terraform"
HELM = CONFIG_DIR / "helm"
DAY = 86400


def unquote(node: Any) -> Any:
    """python-hcl2 keeps HCL's quotes on keys and strings and adds __meta__ keys: drop both."""
    if isinstance(node, dict):
        return {unquote(k): unquote(v) for k, v in node.items() if not (isinstance(k, str) and k.startswith("__"))}
    if isinstance(node, list):
        return [unquote(v) for v in node]
    if isinstance(node, str) and len(node) >= 2 and node[0] == node[-1] == '"':
        return json.loads(node)
    return node


def load_module(name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"resource": {}, "variable": {}, "data": {}}
    for path in sorted((TF / name).glob("*.tf")):
        with path.open() as fh:
            doc = unquote(hcl2.load(fh))
        for kind in ("resource", "data"):
            for entry in doc.get(kind, []):
                for rtype, named in entry.items():
                    for rname, body in named.items():
                        out[kind][(rtype, rname)] = body
        for entry in doc.get("variable", []):
            out["variable"].update(entry)
    return out


def default(module: dict[str, Any], variable: str) -> Any:
    return module["variable"][variable]["default"]


def only(resources: dict, rtype: str) -> list[dict[str, Any]]:
    return [body for (t, _), body in resources.items() if t == rtype]


# ----------------------------------------------------------------------------------------------
# Datadog


def test_datadog_index_archive_and_restriction_queries() -> None:
    dd = load_module("datadog")
    res = dd["resource"]
    index = res[("datadog_logs_index", "audit")]
    assert index["filter"][0]["query"] == "source:otel_audit"  # datadog-otlp.yaml's ddsource
    assert index["retention_days"] == "${var.searchable_retention_days}"
    assert default(dd, "searchable_retention_days") >= 90  # 3 months immediately searchable
    assert index["disable_daily_limit"] is True
    archive = res[("datadog_logs_archive", "audit")]
    assert archive["query"] == "source:otel_audit"
    assert default(dd, "archive_retention_days") >= 365  # 12 months retained
    lock = res[("aws_s3_bucket_object_lock_configuration", "archive")]["rule"][0]["default_retention"][0]
    assert (lock["mode"], lock["days"]) == ("COMPLIANCE", "${var.archive_retention_days}")
    expiry = res[("aws_s3_bucket_lifecycle_configuration", "archive")]["rule"][0]["expiration"][0]["days"]
    assert expiry == "${var.archive_retention_days + 1}"  # never before the retention is over
    for var in ("searchable_retention_days", "archive_retention_days"):
        assert "PCI DSS 10.5.1" in dd["variable"][var]["validation"][0]["error_message"]

    queries = {body["restriction_query"]: body["role_ids"] for body in only(res, "datadog_logs_restriction_query")}
    assert queries == {"source:otel_audit": ["${datadog_role.audit_reader.id}"],
                       "-source:otel_audit": "${var.other_log_reader_role_ids}"}
    perms = {p["id"].rsplit(".", 1)[-1].rstrip("}") for p in res[("datadog_role", "audit_reader")]["permission"]}
    assert perms == {"logs_read_data", "logs_read_index_data", "logs_read_archives"}


def test_datadog_source_matches_what_the_collector_sends() -> None:
    statements = yaml.safe_load((CONFIG_DIR / "datadog-otlp.yaml").read_text())["processors"]["transform/datadog_standard"]
    assert 'set(attributes["ddsource"], "otel_audit")' in statements["log_statements"][0]["statements"]


# ----------------------------------------------------------------------------------------------
# Splunk


def test_splunk_index_retention_token_and_role() -> None:
    sp = load_module("splunk")
    res = sp["resource"]
    index = res[("splunk_indexes", "audit")]
    assert index["frozen_time_period_in_secs"] == "${var.retention_days * local.day_seconds}"
    assert default(sp, "retention_days") * DAY >= 365 * DAY
    assert default(sp, "index_name") == yaml.safe_load((CONFIG_DIR / "splunk.yaml").read_text())[
        "exporters"]["audit_splunk_hec/audit"]["index"].split(":-")[1].rstrip("}")
    hec = res[("splunk_inputs_http_event_collector", "gateway")]
    assert hec["indexes"] == ["${splunk_indexes.audit.name}"]  # the token writes to audit only
    role = res[("splunk_authorization_roles", "audit_reader")]
    assert role["search_indexes_allowed"] == ["${splunk_indexes.audit.name}"]
    assert "PCI DSS 10.5.1" in sp["variable"]["retention_days"]["validation"][0]["error_message"]


# ----------------------------------------------------------------------------------------------
# Grafana Cloud and Loki


def test_grafana_cloud_write_only_token_and_label_scoped_read() -> None:
    gc = load_module("grafana-cloud")
    res = gc["resource"]
    write = res[("grafana_cloud_access_policy", "collector_write")]
    assert write["scopes"] == ["logs:write"]
    assert "label_policy" not in write["realm"][0]
    read = res[("grafana_cloud_access_policy", "auditor_read")]
    assert read["scopes"] == ["logs:read"]
    assert read["realm"][0]["label_policy"][0]["selector"] == "${var.audit_stream_selector}"
    selector = default(gc, "audit_stream_selector")
    label = re.match(r"\{(\w+)=~", selector).group(1)
    assert label == "audit_category"  # an index label loki.yaml sets (test_backend_fields)
    assert res[("grafana_cloud_access_policy_token", "collector")]["access_policy_id"] == \
        "${grafana_cloud_access_policy.collector_write.policy_id}"


def test_loki_values_match_the_labels_and_keep_audit_streams_13_months() -> None:
    limits = yaml.safe_load((HELM / "loki-values.yaml").read_text())["loki"]["limits_config"]
    attrs = {a["action"]: a["attributes"] for a in limits["otlp_config"]["resource_attributes"]["attributes_config"]}
    # The stand-in in the Loki tests is configured the same way.
    assert tuple(attrs["index_label"]) == LOKI_CONFIG["index_label"]
    assert tuple(attrs["structured_metadata"]) == LOKI_CONFIG["structured_metadata"]
    groupby = yaml.safe_load((CONFIG_DIR / "loki.yaml").read_text())["processors"]["groupbyattrs/audit_labels"]
    assert groupby["keys"] == attrs["index_label"]
    (audit,) = [s for s in limits["retention_stream"] if "audit_category" in s["selector"]]
    assert int(audit["period"].rstrip("h")) >= 365 * 24


# ----------------------------------------------------------------------------------------------
# Every module: syntax and static analysis


MODULES = sorted(p.name for p in TF.iterdir() if p.is_dir())


def test_every_module_is_covered() -> None:
    assert MODULES == ["datadog", "grafana-cloud", "splunk"]


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
@pytest.mark.parametrize("module", MODULES)
def test_terraform_fmt_accepts_the_module(module: str) -> None:
    result = subprocess.run(["terraform", "fmt", "-check", "-diff", "-no-color", str(TF / module)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _checkov() -> str | None:
    candidates = [os.environ.get("OTEL_AUDIT_CHECKOV"), shutil.which("checkov"),
                  str(Path.home() / ".cache" / "otel-audit" / "checkov-venv" / "bin" / "checkov")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def test_checkov_finds_nothing() -> None:
    checkov = _checkov()
    if checkov is None:
        pytest.skip("checkov not installed (pip install checkov in its own venv; see docs/collector-deployment.md)")
    result = subprocess.run([checkov, "-d", str(TF), "--framework", "terraform", "--skip-download", "--compact", "-o", "json"],
                            capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout)
    report = report if isinstance(report, dict) else report[0]
    summary = report["summary"]
    assert summary["parsing_errors"] == 0 and summary["failed"] == 0, json.dumps(report["results"]["failed_checks"])[:3000]
    passed = {c["check_id"] for c in report["results"]["passed_checks"]}
    # It did look at the archive: encryption with KMS, versioning, no public access.
    assert {"CKV_AWS_145", "CKV_AWS_21", "CKV_AWS_53"} <= passed
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped.get("suppress_comment") or skipped["check_result"].get("suppress_comment")
        assert reason and "No comment provided" not in reason, f"{skipped['check_id']} skipped without a reason"


# ----------------------------------------------------------------------------------------------
# Helm values for the opentelemetry-collector chart


def test_helm_values_statefulset_volume_and_configs() -> None:
    values = yaml.safe_load((HELM / "values-gateway.yaml").read_text())
    assert values["mode"] == "statefulset"
    assert values["configMap"]["create"] is False
    claims = {c["metadata"]["name"] for c in values["statefulset"]["volumeClaimTemplates"]}
    mounts = {m["name"]: m["mountPath"] for m in values["extraVolumeMounts"]}
    env = {e["name"]: e for e in values["extraEnvs"]}
    queue_dir = env["OTEL_AUDIT_QUEUE_DIR"]["value"]
    assert any(queue_dir.startswith(mounts[c] + "/") for c in claims), "the queue must live on the persistent volume"
    assert values["statefulset"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"

    config_mount = mounts["otel-audit-configs"]
    configs = [a.split("=", 1)[1] for a in values["command"]["extraArgs"] if a.startswith("--config=")]
    assert configs[0] == f"{config_mount}/gateway.yaml"
    required: set[str] = set()
    for config in configs:
        path = CONFIG_DIR / Path(config).name
        assert path.exists(), config
        required |= set(re.findall(r"\$\{required:([A-Z0-9_]+)\}", path.read_text()))
    assert required <= set(env), f"required variables not set: {required - set(env)}"
    for name in required:
        if re.search(r"TOKEN|KEY|AUTH", name):
            assert "secretKeyRef" in env[name].get("valueFrom", {}), f"{name} must come from a Secret"
    assert "contrib" not in values["image"]["repository"]  # our components are not in upstream images
