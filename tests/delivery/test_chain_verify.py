"""The hash chain makes edits, deletions, insertions and reorderings of exported records visible,
naming the record; an untouched chain verifies clean, from the sink and from OTLP JSON alike."""

from __future__ import annotations

import base64
import copy
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

import otel_audit
from otel_audit import runtime
from otel_audit.delivery.chain import load_keys_for_verify
from otel_audit.delivery.verify import verify_files
from otel_audit.event import Target
from tests.delivery.conftest import CHAIN_KEY
from tests.support.otlp_receiver import OtlpReceiver

KEYS = {"k1": CHAIN_KEY.encode()}


def _emit(count: int) -> None:
    for i in range(count):
        otel_audit.record("data_modification", "update", target=Target("invoice", str(i)),
                          attributes={"app.amount": i * 10, "app.ratio": i / 4, "app.flag": i % 2 == 0,
                                      "app.tags": ["a", str(i)]})


@pytest.fixture
def chain_file(delivery) -> Path:
    delivery.start(OTEL_AUDIT_CHAIN_KEY=CHAIN_KEY, OTEL_AUDIT_CHAIN_KEY_ID="k1")
    _emit(25)
    runtime.reset_for_tests()
    lines = delivery.sink.read_text().splitlines()
    assert len(lines) >= 28  # start, policy_loaded, 25 events, stop
    return delivery.sink


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _problems(path: Path, **kwargs: Any) -> list[tuple[str, str]]:
    report = verify_files([str(path)], KEYS, **kwargs)
    return [(p.kind, p.where) for p in report.problems]


def test_untouched_chain_verifies_clean(chain_file: Path) -> None:
    report = verify_files([str(chain_file)], KEYS)
    assert report.ok, [str(p) for p in report.problems]
    assert report.chains == 1 and report.records >= 28
    first = json.loads(chain_file.read_text().splitlines()[0])["attributes"]
    assert first["audit.chain.alg"] == "hmac-sha256" and first["audit.chain.key_id"] == "k1"
    assert first["audit.chain.seq"] == 1 and first["audit.chain.prev"] == ""


def test_wrong_key_or_missing_key_fails(chain_file: Path) -> None:
    assert not verify_files([str(chain_file)], {"k1": b"another-key-of-sixteen"}).ok
    report = verify_files([str(chain_file)], {})
    assert [p.kind for p in report.problems] == ["unverifiable"]


def _mutate_value(record: dict[str, Any], rng: random.Random) -> None:
    field = rng.choice(["body", "time", "severity", "attr", "attr_type", "event_name", "seq"])
    attrs = record["attributes"]
    if field == "body":
        record["body"] = record["body"] + "!"
    elif field == "time":
        record["time_unix_nano"] += 1
    elif field == "severity":
        record["severity_number"] = 17
    elif field == "attr":
        attrs["enduser.id"] = "someone-else"
    elif field == "attr_type":
        attrs["app.amount"] = str(attrs.get("app.amount", 0))  # "10" is not 10
    elif field == "event_name":
        record["event_name"] = "audit.data_access.read"
    else:
        attrs["audit.chain.prev"] = "0" * 64


@pytest.mark.parametrize("seed", range(12))
def test_random_modification_is_named(chain_file: Path, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lines = chain_file.read_text().splitlines()
    index = rng.randrange(len(lines))
    record = json.loads(lines[index])
    _mutate_value(record, rng)
    lines[index] = json.dumps(record)
    problems = _problems(_write(tmp_path / "m.jsonl", lines))
    assert (("modified", f"{tmp_path / 'm.jsonl'}:{index + 1}") in problems), problems
    assert all(kind in ("modified", "reordered") for kind, _ in problems), problems


@pytest.mark.parametrize("seed", range(8))
def test_random_deletion_is_located(chain_file: Path, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lines = chain_file.read_text().splitlines()
    count = rng.randint(1, 3)
    start = rng.randrange(1, len(lines) - count)  # a record remains after the gap (tail: see next tests)
    del lines[start:start + count]
    path = _write(tmp_path / "d.jsonl", lines)
    report = verify_files([str(path)], KEYS)
    [problem] = report.problems
    assert problem.kind == "deleted"
    assert problem.seq == start + 1  # seq is 1-based, line index 0-based
    assert problem.where == f"between {path}:{start} and {path}:{start + 1}"


def test_deleting_first_records_is_a_gap_at_the_start(chain_file: Path, tmp_path: Path) -> None:
    lines = chain_file.read_text().splitlines()[2:]
    problems = verify_files([str(_write(tmp_path / "s.jsonl", lines))], KEYS).problems
    assert [(p.kind, p.seq) for p in problems] == [("deleted", 1)]
    assert "1..2 missing at the start" in problems[0].detail


@pytest.mark.parametrize("seed", range(8))
def test_random_insertion_is_named(chain_file: Path, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lines = chain_file.read_text().splitlines()
    forged = json.loads(lines[rng.randrange(len(lines))])
    forged["attributes"]["audit.event_id"] = "forged-" + str(seed)
    forged["attributes"]["enduser.id"] = "mallory"
    if seed % 2:  # also claim a brand-new position at the end
        forged["attributes"]["audit.chain.seq"] = len(lines) + 5
    position = rng.randrange(len(lines) + 1)
    lines.insert(position, json.dumps(forged))
    path = _write(tmp_path / "i.jsonl", lines)
    problems = _problems(path)
    assert ("inserted", f"{path}:{position + 1}") in problems, problems
    assert all(kind in ("inserted", "reordered", "deleted") for kind, _ in problems), problems


@pytest.mark.parametrize("seed", range(8))
def test_random_reordering_is_named(chain_file: Path, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lines = chain_file.read_text().splitlines()
    source = rng.randrange(len(lines))
    moved = lines.pop(source)
    target = rng.choice([i for i in range(len(lines) + 1) if abs(i - source) > 1])
    lines.insert(target, moved)
    path = _write(tmp_path / "r.jsonl", lines)
    report = verify_files([str(path)], KEYS)
    assert [p.kind for p in report.problems] == ["reordered"], [str(p) for p in report.problems]
    assert report.problems[0].seq == source + 1
    assert report.problems[0].where == f"{path}:{target + 1}"
    assert verify_files([str(path)], KEYS, allow_reorder=True).ok


def test_exact_duplicates_are_at_least_once_not_tampering(chain_file: Path, tmp_path: Path) -> None:
    lines = chain_file.read_text().splitlines()
    lines = lines + lines[5:9]  # a batch delivered twice
    report = verify_files([str(_write(tmp_path / "dup.jsonl", lines))], KEYS)
    assert report.ok and report.duplicates == 4


def test_otlp_json_from_the_wire_verifies_and_mutations_are_caught(delivery, tmp_path: Path) -> None:
    """OTLP JSON encodes ints as strings and bytes as base64: the canonical form is over typed values."""
    with OtlpReceiver() as receiver:
        delivery.start(OTEL_AUDIT_EXPORTER="otlp", OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=f"{receiver.endpoint}/v1/logs",
                       OTEL_AUDIT_CHAIN_KEY=CHAIN_KEY, OTEL_AUDIT_CHAIN_KEY_ID="k1")
        _emit(10)
        runtime.reset_for_tests()
        bodies = list(receiver.raw_bodies)
    lines = []
    for body in bodies:
        request = ExportLogsServiceRequest()
        request.ParseFromString(body)
        lines.append(json.dumps(MessageToDict(request)))
    assert '"intValue": "' in "".join(lines)  # really the string-typed OTLP JSON encoding
    path = _write(tmp_path / "otlp.json", lines)
    report = verify_files([str(path)], KEYS)
    assert report.ok and report.records == 13, [str(p) for p in report.problems]
    # Tamper with one int attribute inside the OTLP JSON.
    doc = json.loads(lines[-1])
    record = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    for kv in record["attributes"]:
        if kv["key"] == "ocsf.class_uid":
            kv["value"] = {"intValue": str(int(kv["value"]["intValue"]) + 1)}
    lines[-1] = json.dumps(doc)
    problems = verify_files([str(_write(tmp_path / "otlp2.json", lines))], KEYS).problems
    assert [p.kind for p in problems] == ["modified"]


def test_collector_style_hex_ids_and_resource_changes_still_verify(chain_file: Path, tmp_path: Path) -> None:
    """A Collector adding resource attributes does not break the chain; ids may be hex or base64."""
    out = []
    for line in chain_file.read_text().splitlines():
        record = json.loads(line)
        record["resource"]["k8s.pod.name"] = "added-by-collector"
        record["observed_time_unix_nano"] += 5
        out.append(json.dumps(record))
    assert verify_files([str(_write(tmp_path / "c.jsonl", out))], KEYS).ok


def test_end_of_chain_gap_is_found_through_the_next_chain(delivery, tmp_path: Path) -> None:
    delivery.start(OTEL_AUDIT_CHAIN_KEY=CHAIN_KEY, OTEL_AUDIT_CHAIN_KEY_ID="k1")
    _emit(3)
    runtime.reset_for_tests()  # clean end: the spool notes "chain:last_seq"
    delivery.start()
    _emit(1)
    runtime.reset_for_tests()
    lines = delivery.sink.read_text().splitlines()
    second_chain = json.loads(lines[-1])["attributes"]["audit.chain.id"]
    first = [json.loads(l) for l in lines if json.loads(l)["attributes"]["audit.chain.id"] != second_chain]
    named = [json.loads(l)["attributes"].get("audit.chain.parent") for l in lines]
    assert [f"{first[0]['attributes']['audit.chain.id']}:{len(first)}"] in named
    assert verify_files([str(delivery.sink)], KEYS).ok
    # Truncate the first chain's tail (its last 2 records): only the next chain can tell.
    tail = {json.dumps(r) for r in first[-2:]}
    kept = [l for l in lines if json.dumps(json.loads(l)) not in tail]
    problems = verify_files([str(_write(tmp_path / "t.jsonl", kept))], KEYS).problems
    assert [(p.kind, p.seq) for p in problems] == [("deleted", len(first) - 1)]
    assert "missing at the end of the chain" in problems[0].detail


def test_verify_cli_exit_codes_and_key_file(chain_file: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(f"old:not-this-one-0000\nk1:{CHAIN_KEY}\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    ok = subprocess.run([sys.executable, "-m", "otel_audit.cli", "verify", str(chain_file), "--key-file",
                         str(key_file)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK:" in ok.stdout
    lines = chain_file.read_text().splitlines()
    del lines[3]
    bad = subprocess.run([sys.executable, "-m", "otel_audit.cli", "verify", str(_write(tmp_path / "b.jsonl", lines)),
                          "--key-file", str(key_file)], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "DELETED" in bad.stdout
    missing = subprocess.run([sys.executable, "-m", "otel_audit.cli", "verify", str(tmp_path / "nope.jsonl")],
                             capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert CHAIN_KEY not in ok.stdout + ok.stderr + bad.stdout + bad.stderr
