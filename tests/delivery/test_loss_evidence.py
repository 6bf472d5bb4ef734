"""Every loss is evidence (issue 17): lost records are counted in the metrics, keep their sequence
numbers, and are declared in the chain by ``audit.audit_system.records_lost`` once the spool
accepts again; ``verify`` tells a declared gap from a deletion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import otel_audit
from otel_audit import runtime
from otel_audit.delivery.verify import exit_status, verify_files
from tests.delivery.conftest import CHAIN_KEY

REPO = Path(__file__).resolve().parents[2]
KEYS = {"k1": CHAIN_KEY.encode()}

METRICS_SCRIPT = r"""
import json, os, sys, time
from pathlib import Path
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
import otel_audit
from otel_audit import runtime
blocker = Path(sys.argv[1]) / "not-a-dir"
blocker.write_text("x")
os.environ["OTEL_AUDIT_SPOOL_DIR"] = str(blocker / "spool")

def sample():
    out = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = sum(p.value for p in m.data.data_points)
    return out

runtime.start()
for i in range(3):
    otel_audit.record("data_modification", "update", attributes={"app.i": i})
before = sample()
blocker.unlink()
time.sleep(1.1)  # fail-open retries a broken spool at most once a second
otel_audit.record("data_modification", "update", attributes={"app.i": 3})
print(json.dumps({"before": before, "after": sample()}))
"""


def test_losses_show_in_the_metrics_until_declared(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "OTEL_AUDIT_QUIET": "1",
           "OTEL_AUDIT_SINK_PATH": str(tmp_path / "audit.jsonl")}
    result = subprocess.run([sys.executable, "-c", METRICS_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    before, after = data["before"], data["after"]
    assert before["otel_audit.records.dropped"] == 5  # start, policy_loaded, 3 events
    assert before["otel_audit.records.lost_undeclared"] == 5 and before["otel_audit.records.declared"] == 0
    assert after["otel_audit.records.declared"] == 5 and after["otel_audit.records.lost_undeclared"] == 0


def test_a_failed_write_keeps_its_sequence_numbers_and_is_declared(delivery) -> None:
    delivery.start(OTEL_AUDIT_CHAIN_KEY=CHAIN_KEY, OTEL_AUDIT_CHAIN_KEY_ID="k1")
    otel_audit.record("data_modification", "update", attributes={"app.i": 0})
    processor = runtime.get_runtime().processor
    spool = processor._spool  # noqa: SLF001 - make the next writes fail at the system call
    real_fd = spool._write_fd  # noqa: SLF001
    spool._write_fd = read_only = os.open("/dev/null", os.O_RDONLY)  # noqa: SLF001
    try:
        for i in range(2):
            otel_audit.record("data_modification", "update", attributes={"app.i": 1 + i})
    finally:
        spool._write_fd = real_fd  # noqa: SLF001
        os.close(read_only)
    # The first was sealed and its write failed; the second was refused (spool marked broken) before sealing.
    assert dict(processor.stats.dropped_by_reason) == {"spool_write_failed": 1, "spool_unavailable": 1}
    processor._last_open_attempt = 0.0  # noqa: SLF001 - the once-a-second retry, without waiting for it
    otel_audit.record("data_modification", "update", attributes={"app.i": 3})
    runtime.reset_for_tests()
    records = [json.loads(line) for line in delivery.sink.read_text().splitlines()]
    seq_of = {r["attributes"].get("app.i"): r["attributes"]["audit.chain.seq"] for r in records}
    [declaration] = [r for r in records if r["event_name"] == "audit.audit_system.records_lost"]
    lost = declaration["attributes"]["audit.lost.seqs"]
    assert lost == [f"{seq_of[0] + 1}-{seq_of[0] + 2}"]  # the two lost records' numbers, skipped in the chain
    assert seq_of[3] == seq_of[0] + 3 and declaration["attributes"]["audit.lost.count"] == 2
    report = verify_files([str(delivery.sink)], KEYS)
    assert not report.problems and len(report.declared) == 1 and exit_status(report) == 3
    # The same gap without its declaration (removed, itself a gap) is a deletion.
    undeclared = delivery.tmp_path / "undeclared.jsonl"
    undeclared.write_text("".join(json.dumps(r) + "\n" for r in records if r is not declaration))
    report = verify_files([str(undeclared)], KEYS)
    assert [(p.kind, p.seq) for p in report.problems] == [
        ("deleted", seq_of[0] + 1), ("deleted", declaration["attributes"]["audit.chain.seq"])]
    assert not report.declared


def test_drop_oldest_evictions_are_declared_with_their_sequence_numbers(delivery) -> None:
    """Evicted records were durable and sealed: their numbers (read from the evicted segment) are
    declared. The exporter is down, so the declarations are read back from the spool itself."""
    from otel_audit.delivery import frames as frames_mod
    from otel_audit.delivery.loss import parse_ranges
    from otel_audit.delivery.spool import iter_frames

    delivery.start(OTEL_AUDIT_OVERFLOW="drop_oldest", OTEL_AUDIT_SPOOL_MAX_BYTES="64KiB", OTEL_AUDIT_EXPORTER="otlp",
                   OTEL_EXPORTER_OTLP_LOGS_ENDPOINT="http://127.0.0.1:9/v1/logs", OTEL_EXPORTER_OTLP_LOGS_TIMEOUT="1",
                   OTEL_AUDIT_FLUSH_TIMEOUT_MS="100")
    processor = runtime.get_runtime().processor
    for i in range(200):
        otel_audit.record("data_access", "read", attributes={"app.i": i})
    evicted = processor.stats.dropped_by_reason["overflow_evicted"]
    assert evicted > 0 and processor.stats.declared == evicted and processor.losses.undeclared() == 0
    present, declared = set(), set()
    for segment in sorted(processor._spool.path.glob("*.seg")):  # noqa: SLF001
        for payload, _end in iter_frames(segment.read_bytes()):
            seq = int(frames_mod.trailer(payload)[2])
            present.add(seq)
            if b"audit.audit_system.records_lost" in payload[:80]:
                record = frames_mod.decode_record(payload, processor.resource, processor.scope)
                declared |= parse_ranges(record.log_record.attributes["audit.lost.seqs"])
    # The newest eviction took the segment just before the oldest one left: its last record, the
    # one before the first spooled now, is declared; nothing that still exists is.
    assert min(present) > 1 and min(present) - 1 in declared
    assert not declared & present


DIES_WITH_LOSSES = r"""
import os, signal
import otel_audit
from otel_audit import runtime
rt = runtime.start()
otel_audit.record("data_modification", "update", attributes={"app.i": 0})
spool = rt.processor._spool
spool._write_fd = os.open("/dev/null", os.O_RDONLY)  # every write fails from here on (EBADF)
for i in range(2):
    otel_audit.record("data_modification", "update", attributes={"app.i": 1 + i})
runtime.flush()
os.kill(os.getpid(), signal.SIGKILL)  # dies before the spool could accept again
"""


def test_a_dead_process_s_losses_are_declared_by_the_process_that_adopts_its_spool(delivery) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "OTEL_AUDIT_QUIET": "1",
           "OTEL_AUDIT_SINK_PATH": str(delivery.sink), "OTEL_AUDIT_SPOOL_DIR": str(delivery.spool),
           "OTEL_AUDIT_CHAIN_KEY": CHAIN_KEY, "OTEL_AUDIT_CHAIN_KEY_ID": "k1"}
    died = subprocess.run([sys.executable, "-c", DIES_WITH_LOSSES], env=env, capture_output=True, text=True, timeout=60)
    assert died.returncode == -9, died.stderr
    status = subprocess.run([sys.executable, "-m", "otel_audit.cli", "status", "--spool-dir", str(delivery.spool),
                             "--json"], env=env, capture_output=True, text=True, check=True)
    assert json.loads(status.stdout)["lost_undeclared"] == 2  # on disk, for anyone to see
    delivery.start(OTEL_AUDIT_CHAIN_KEY=CHAIN_KEY, OTEL_AUDIT_CHAIN_KEY_ID="k1")  # adopts the dead spool
    otel_audit.record("data_modification", "update", attributes={"app.i": 3})
    runtime.flush()
    runtime.reset_for_tests()
    records = [json.loads(line) for line in delivery.sink.read_text().splitlines()]
    dead_chain = next(r["attributes"]["audit.chain.id"] for r in records if r["attributes"].get("app.i") == 0)
    [declaration] = [r for r in records if r["event_name"] == "audit.audit_system.records_lost"]
    assert declaration["attributes"]["audit.lost.chain_id"] == dead_chain
    assert declaration["attributes"]["audit.chain.id"] != dead_chain
    assert declaration["attributes"]["audit.lost.count"] == 2
    report = verify_files([str(delivery.sink)], KEYS)
    assert not report.problems, [str(p) for p in report.problems]
    assert [p.chain for p in report.declared] == [dead_chain] and exit_status(report) == 3


def test_a_forked_child_whose_first_record_is_lost_still_names_its_parent() -> None:
    """The fork link goes on the first *durable* record: a lost seq 1 must not drop it."""
    from otel_audit.delivery.chain import ChainKey, ChainState

    key = ChainKey("k1", CHAIN_KEY.encode())
    child = ChainState().fork()
    snapshot = child.snapshot()
    seq, _prev, mac, _parents, forked_from = child.seal(key, b"first")
    assert seq == 1 and forked_from
    child.advance(seq, mac, False)
    child.restore((child.seq, snapshot[1], snapshot[2]))  # its write failed: the processor keeps the number
    seq, prev, _mac, _parents, again = child.seal(key, b"second")
    assert (seq, prev, again) == (2, "", forked_from)
