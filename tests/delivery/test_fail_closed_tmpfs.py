"""Fail-closed is exact (issue 17): a real gunicorn server under the launcher, its spool on a small
tmpfs that fills up. Every audited DELETE either has a durable record, or got a 503 and its view
did not run (the item still exists) - back-to-back and 1.2 s apart (the old admission re-probed the
spool once a second and let requests through whose records were then lost)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from otel_audit.delivery.sink import read_sink
from tests.support.procs import REPO, Server, base_env, free_port, launcher

RESERVE = 64 << 10
POLICY = "defaults: {required: true}\n"  # every request's record must be durable


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill_leaving(mount_point: Path, free: int) -> None:
    """Fill the tmpfs until ``free`` bytes are left (tmpfs counts whole pages)."""
    stats = os.statvfs(mount_point)
    available = stats.f_bavail * stats.f_frsize
    assert available > free, f"only {available} bytes free on the test tmpfs"
    with open(mount_point / "filler", "wb") as handle:
        handle.write(b"\0" * (available - free))


def _serve(tmp_path: Path, spool: Path, items: Path, **extra: str) -> tuple[Server, str]:
    port = free_port()
    env = base_env(OTEL_AUDIT_FAIL_MODE="closed", OTEL_AUDIT_POLICY=POLICY, OTEL_AUDIT_SPOOL_DIR=str(spool),
                   OTEL_AUDIT_SINK_PATH=str(tmp_path / "audit.jsonl"), OTEL_AUDIT_SPOOL_RESERVE=str(RESERVE),
                   OTEL_AUDIT_QUIET="1", ITEMS_DIR=str(items), **extra)
    server = Server([launcher(), "gunicorn", "tests.delivery.items_app:app", "-b", f"127.0.0.1:{port}", "-w", "1"],
                    env, f"http://127.0.0.1:{port}/items", cwd=REPO, log_path=tmp_path / "server.log").wait_ready()
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("spacing", [0.0, 1.2], ids=["back-to-back", "1.2s-apart"])
def test_closed_mode_never_runs_a_view_whose_record_is_lost(tmp_path: Path, small_tmpfs: Path, spacing: float):
    items = tmp_path / "items"
    items.mkdir()
    names = [f"item{i}" for i in range(10)]
    for name in names:
        (items / name).write_text("x")
    server, base = _serve(tmp_path, small_tmpfs / "spool", items)
    try:
        assert requests.get(f"{base}/items", timeout=10).status_code == 200  # the worker's spool exists now
        _fill_leaving(small_tmpfs, 8 << 10)  # room for a few records, then the disk is full
        statuses = {}
        for name in names:
            statuses[name] = requests.delete(f"{base}/items/{name}", timeout=30).status_code
            time.sleep(spacing)
        (small_tmpfs / "filler").unlink()  # the disk recovers: what was spooled is delivered
        time.sleep(0.5)
    finally:
        server.stop()
    records = [r for r in read_sink(tmp_path / "audit.jsonl")
               if r["attributes"].get("http.request.method") == "DELETE"]
    recorded = {r["attributes"]["url.path"].rsplit("/", 1)[-1] for r in records
                if r["attributes"].get("http.response.status_code") == 204}
    for name, status in statuses.items():
        if status == 204:
            assert name in recorded, f"{name}: deleted (204) but its audit record was lost: {statuses}"
            assert not (items / name).exists()
        else:
            assert status == 503, server.output()
            assert (items / name).exists(), f"{name}: refused with 503 but the view ran"
    # The test means something only if the disk filled during the run.
    assert 204 in statuses.values() and 503 in statuses.values(), statuses


def _status(spool: Path) -> dict:
    result = subprocess.run([sys.executable, "-m", "otel_audit.cli", "status", "--spool-dir", str(spool), "--json"],
                            capture_output=True, text=True, env=base_env(), cwd=REPO, check=True)
    return json.loads(result.stdout)


def test_open_mode_losses_are_counted_then_declared_in_the_chain(tmp_path: Path, small_tmpfs: Path):
    """Fail-open on a full disk: the requests are served, each lost record is counted (``otel-audit
    status``), and once the disk has room again a records_lost record declares the gap in the chain,
    which ``verify`` reports as a declared gap (exit 3), not as OK and not as tampering."""
    items = tmp_path / "items"
    items.mkdir()
    for i in range(7):
        (items / f"item{i}").write_text("x")
    port = free_port()
    env = base_env(OTEL_AUDIT_FAIL_MODE="open", OTEL_AUDIT_SPOOL_DIR=str(small_tmpfs / "spool"),
                   OTEL_AUDIT_POLICY="pack:all-requests",  # the first GET makes the worker's spool, as before
                   OTEL_AUDIT_SINK_PATH=str(tmp_path / "audit.jsonl"), OTEL_AUDIT_QUIET="1", ITEMS_DIR=str(items),
                   OTEL_AUDIT_CHAIN_KEY="tmpfs-chain-key-0123456789")
    server = Server([launcher(), "gunicorn", "tests.delivery.items_app:app", "-b", f"127.0.0.1:{port}", "-w", "1"],
                    env, f"http://127.0.0.1:{port}/items", cwd=REPO, log_path=tmp_path / "server.log").wait_ready()
    base = f"http://127.0.0.1:{port}"
    try:
        assert requests.get(f"{base}/items", timeout=10).status_code == 200
        _fill_leaving(small_tmpfs, 0)
        for i in range(6):  # the first may still fit in the segment's last page
            assert requests.delete(f"{base}/items/item{i}", timeout=30).status_code == 204  # open: served
        during = _status(small_tmpfs / "spool")
        assert during["records_lost"] >= 3 and during["lost_undeclared"] == during["records_lost"], during
        (small_tmpfs / "filler").unlink()
        time.sleep(1.1)  # fail-open retries a broken spool at most once a second
        assert requests.delete(f"{base}/items/item6", timeout=30).status_code == 204
        time.sleep(0.5)
        after = _status(small_tmpfs / "spool")
    finally:
        server.stop()
    assert after["records_lost"] == during["records_lost"] and after["lost_undeclared"] == 0, after
    records = list(read_sink(tmp_path / "audit.jsonl"))
    [declaration] = [r for r in records if r["event_name"] == "audit.audit_system.records_lost"]
    attrs = declaration["attributes"]
    assert attrs["audit.lost.count"] == during["records_lost"] and attrs["audit.lost.seqs"]
    assert attrs["audit.lost.first_unix_nano"] <= attrs["audit.lost.last_unix_nano"]
    assert any(r.startswith("spool_write_failed=") for r in attrs["audit.lost.reasons"])
    deleted = {r["attributes"]["url.path"] for r in records if r["attributes"].get("http.request.method") == "DELETE"}
    assert "/items/item6" in deleted and len(deleted) == 7 - during["records_lost"]  # the lost ones are not there
    verify = subprocess.run([sys.executable, "-m", "otel_audit.cli", "verify", str(tmp_path / "audit.jsonl")],
                            capture_output=True, text=True, cwd=REPO,
                            env=base_env(OTEL_AUDIT_CHAIN_KEY="tmpfs-chain-key-0123456789"))
    assert verify.returncode == 3, verify.stdout + verify.stderr
    assert "DECLARED GAP" in verify.stdout and "DELETED" not in verify.stdout


def test_a_spool_that_could_not_be_created_on_a_full_disk_opens_once_there_is_room(delivery, small_tmpfs: Path):
    """Start-up on a full disk: requests are refused; when space comes back the next request is
    admitted (a half-created spool directory must not block every later attempt)."""
    from otel_audit import runtime
    from otel_audit.errors import AuditUnavailable

    _fill_leaving(small_tmpfs, 0)
    delivery.start(OTEL_AUDIT_FAIL_MODE="closed", OTEL_AUDIT_SPOOL_DIR=str(small_tmpfs / "spool"),
                   OTEL_AUDIT_SPOOL_RESERVE="16KiB")
    for _ in range(2):
        with pytest.raises(AuditUnavailable):
            runtime.admit_request()
    (small_tmpfs / "filler").unlink()
    runtime.admit_request()  # admitted: the spool exists now and holds its reservation
    processor = runtime.get_runtime().processor
    assert (processor._spool.path / "reserve").stat().st_size == 16 << 10  # noqa: SLF001
