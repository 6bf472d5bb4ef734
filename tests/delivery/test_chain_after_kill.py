"""A process killed before its background sync wrote chain.state: the next process still names
the dead chain's true end (read from the spool's last frame), so verify sees no false gap."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from otel_audit.delivery.verify import verify_files
from tests.support.procs import base_env

CHAIN_KEY = "chain-key-0123456789abcdef"

_VICTIM = textwrap.dedent(
    """
    import os, signal
    import otel_audit
    from otel_audit import runtime
    runtime.start()
    for i in range(5):
        otel_audit.record("configuration", "config_change", attributes={"app.n": i})
    os.kill(os.getpid(), signal.SIGKILL)  # before any background sync could write chain.state
    """
)

_SUCCESSOR = textwrap.dedent(
    """
    import otel_audit
    from otel_audit import runtime
    runtime.start()
    otel_audit.record("configuration", "config_change", attributes={"app.n": 99})
    runtime.flush()
    """
)


def test_successor_names_the_killed_chains_true_end(tmp_path: Path) -> None:
    sink = tmp_path / "audit.jsonl"
    env = base_env(OTEL_AUDIT_SINK_PATH=str(sink), OTEL_AUDIT_SPOOL_DIR=str(tmp_path / "spool"),
                   OTEL_AUDIT_CHAIN_KEY=CHAIN_KEY, OTEL_AUDIT_CHAIN_KEY_ID="k1", OTEL_AUDIT_QUIET="1")
    victim = subprocess.run([sys.executable, "-c", _VICTIM], env=env, capture_output=True, timeout=60)
    assert victim.returncode == -9
    state = list((tmp_path / "spool").rglob("chain.state"))
    assert state and all(not p.read_bytes().strip() for p in state), "the test needs a stale (empty) chain.state"
    subprocess.run([sys.executable, "-c", _SUCCESSOR], env=env, check=True, timeout=60)

    records = [json.loads(line) for line in sink.read_text().splitlines()]
    chains: dict[str, list[int]] = {}
    for record in records:
        attrs = record["attributes"]
        chains.setdefault(attrs["audit.chain.id"], []).append(int(attrs["audit.chain.seq"]))
    assert len(chains) == 2
    dead_chain = next(c for c, seqs in chains.items() if any(
        r["attributes"].get("app.n") == 0 for r in records if r["attributes"]["audit.chain.id"] == c))
    parents = [r["attributes"].get("audit.chain.parent") for r in records if r["attributes"].get("audit.chain.parent")]
    assert [f"{dead_chain}:{max(chains[dead_chain])}"] in parents
    assert verify_files([str(sink)], {"k1": CHAIN_KEY.encode()}).ok
