"""Intent frames (issue #16 item 5): no change goes unaudited because the process died mid-request.

Real processes, real spool files: a victim notes an intent and is ``kill -9``ed; the next
process adopts its spool and reports the intent as an interrupted record, exactly once - unless
the final record or a resolve marker made it before the kill.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import otel_audit
from otel_audit.delivery import intents as intents_mod
from otel_audit.delivery.spool import iter_frames
from otel_audit.delivery.status import spool_status
from otel_audit.delivery.verify import verify_files
from otel_audit.errors import AuditUnavailable, containment
from otel_audit.ids import new_event_id
from tests.delivery.intent_victim import CARD, INTENT_ATTRIBUTES
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.procs import REPO, base_env

CHAIN_KEY = "intent-chain-key-0123456789abcdef"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return base_env(OTEL_AUDIT_SINK_PATH=str(tmp_path / "audit.jsonl"), OTEL_AUDIT_SPOOL_DIR=str(tmp_path / "spool"),
                    OTEL_AUDIT_CHAIN_KEY=CHAIN_KEY, OTEL_AUDIT_CHAIN_KEY_ID="k1", OTEL_AUDIT_QUIET="1", **extra)


def _victim(env: dict[str, str], plan: str, event_id: str) -> list[str]:
    """Run the victim to its kill -9; the event ids of the records it emitted."""
    done = subprocess.run([sys.executable, "-m", "tests.delivery.intent_victim", plan, event_id], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == (0 if plan == "exit" else -signal.SIGKILL), done.stderr
    assert "error in" not in done.stderr, done.stderr  # nothing contained: intent frames are never exported
    return done.stdout.split()


def _adopt(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "tests.delivery.intent_adopter"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "error in" not in done.stderr, done.stderr  # the dead spool's intent frames were not exported


def _sink(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


def _interrupted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The interrupted records, each once: a record delivered twice (at-least-once: a kill between
    export and ack) is one record; two reports of one intent would be two (two chain positions)."""
    unique = {}
    for r in records:
        if r["attributes"].get("audit.outcome.reason") == "interrupted":
            unique.setdefault((r["attributes"]["audit.chain.id"], r["attributes"]["audit.chain.seq"]), r)
    return list(unique.values())


def _spooled_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((tmp_path / "spool").rglob("*.seg")))


@pytest.mark.parametrize("ack", ["write", "fsync"])  # fsync: through the writer thread's group commit
def test_killed_before_the_final_record_its_intent_arrives_once_as_interrupted(tmp_path: Path, ack: str) -> None:
    env = _env(tmp_path, OTEL_AUDIT_SPOOL_ACK=ack)
    event_id = new_event_id()
    _victim(env, "intent", event_id)
    spooled = _spooled_bytes(tmp_path)
    assert event_id.encode() in spooled
    assert CARD.encode() not in spooled  # redacted before it was written
    _adopt(env)

    records = _sink(tmp_path)
    [record] = _interrupted(records)
    attrs = record["attributes"]
    assert attrs["audit.event_id"] == event_id
    assert attrs["audit.outcome"] == "unknown"
    for key in ("audit.category", "audit.action", "enduser.id", "user.name", "http.request.method", "http.route",
                "db.collection.name", "db.operation.name", "client.address", "audit.origin"):
        assert attrs[key] == INTENT_ATTRIBUTES[key], key
    assert attrs["url.path"].startswith("/cards/") and CARD not in attrs["url.path"]
    assert CARD.encode() not in (tmp_path / "audit.jsonl").read_bytes()
    assert record["event_name"] == "audit.data_modification.update_resource"
    # Its time is the intent's (before the adopter's own records), the pid the victim's.
    victim_start = next(r for r in records if r["attributes"].get("audit.action") == "start")
    assert attrs["audit.interrupted.pid"] == int(victim_start["attributes"]["enduser.id"].removeprefix("pid:"))
    assert attrs["audit.interrupted.chain_id"] == victim_start["attributes"]["audit.chain.id"]
    assert victim_start["time_unix_nano"] <= record["time_unix_nano"]
    adopter_start = [r for r in records if r["attributes"].get("audit.action") == "start"][-1]
    assert record["time_unix_nano"] < adopter_start["time_unix_nano"]
    # Chained by the adopter like every record; the adopter names the dead chain's true end (its
    # last frame is the intent, not a record); the whole file verifies.
    assert attrs["audit.chain.id"] == adopter_start["attributes"]["audit.chain.id"]
    dead_chain = victim_start["attributes"]["audit.chain.id"]
    dead_end = max(r["attributes"]["audit.chain.seq"] for r in records if r["attributes"]["audit.chain.id"] == dead_chain)
    assert [f"{dead_chain}:{dead_end}"] in [r["attributes"].get("audit.chain.parent") for r in records]
    assert verify_files([str(tmp_path / "audit.jsonl")], {"k1": CHAIN_KEY.encode()}).ok
    assert not list((tmp_path / "spool").rglob("*.seg"))  # nothing left behind


def test_the_final_record_supersedes_the_intent(tmp_path: Path) -> None:
    env = _env(tmp_path)
    event_id = new_event_id()
    assert _victim(env, "final", event_id) == [event_id]
    _adopt(env)
    records = _sink(tmp_path)
    assert not _interrupted(records)
    finals = [r for r in records if r["attributes"]["audit.event_id"] == event_id]
    assert finals and all(r["attributes"]["audit.outcome"] == "success" for r in finals)  # maybe re-sent, never replaced


def test_a_resolved_intent_leaves_no_record(tmp_path: Path) -> None:
    env = _env(tmp_path)
    event_id = new_event_id()
    _victim(env, "resolve", event_id)
    _adopt(env)
    records = _sink(tmp_path)
    assert not _interrupted(records)
    assert not [r for r in records if r["attributes"]["audit.event_id"] == event_id]


def test_an_intent_still_open_at_a_clean_exit_is_reported_by_the_next_process(tmp_path: Path) -> None:
    env = _env(tmp_path)
    event_id = new_event_id()
    _victim(env, "exit", event_id)
    assert list((tmp_path / "spool").rglob("*.seg"))  # the spool was kept for it
    _adopt(env)
    [record] = _interrupted(_sink(tmp_path))
    assert record["attributes"]["audit.event_id"] == event_id


def test_an_intent_the_live_exporter_passed_still_survives_the_kill(tmp_path: Path) -> None:
    env = _env(tmp_path)
    event_id = new_event_id()
    later = _victim(env, "passed", event_id)
    exported_before_the_kill = {r["attributes"]["audit.event_id"] for r in _sink(tmp_path)}
    assert len(later) == 3 and set(later) <= exported_before_the_kill  # the exporter read past the intent
    _adopt(env)
    records = _sink(tmp_path)
    [record] = _interrupted(records)
    assert record["attributes"]["audit.event_id"] == event_id
    # Records after the intent are sent again (at-least-once): same event ids, verify notes duplicates.
    assert set(later) <= {r["attributes"]["audit.event_id"] for r in records}
    assert verify_files([str(tmp_path / "audit.jsonl")], {"k1": CHAIN_KEY.encode()}).ok


def test_an_adopter_killed_mid_adoption_does_not_report_the_intent_twice(tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        receiver.fail_with = 503  # the first adopter cannot send anything before it is killed
        env = _env(tmp_path, OTEL_AUDIT_EXPORTER="otlp", OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=f"{receiver.endpoint}/v1/logs",
                   OTEL_EXPORTER_OTLP_LOGS_PROTOCOL="http/protobuf", OTEL_EXPORTER_OTLP_LOGS_TIMEOUT="1")
        event_id = new_event_id()
        _victim(env, "intent", event_id)
        [victim_dir] = [p for p in (tmp_path / "spool").rglob("p*") if p.is_dir()]

        first = subprocess.Popen([sys.executable, "-m", "tests.delivery.intent_adopter", "--hang"], env=env, cwd=REPO)
        try:
            deadline = time.monotonic() + 30
            while not _spooled_elsewhere(tmp_path / "spool", victim_dir, event_id):  # reported in its own spool
                assert time.monotonic() < deadline, "the first adopter did not report the intent"
                time.sleep(0.05)
            deadline = time.monotonic() + 5
            while _open_intents(victim_dir) and time.monotonic() < deadline:  # and (after it) noted so
                time.sleep(0.05)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        assert not receiver.audit_records()

        receiver.fail_with = None
        _adopt(env)
        interrupted = _interrupted([{"attributes": r.attributes} for r in receiver.audit_records()])
        assert [r["attributes"]["audit.event_id"] for r in interrupted] == [event_id]


def _frames(spool_dir: Path) -> list[bytes]:
    return [payload for seg in sorted(spool_dir.glob("*.seg")) for payload, _end in iter_frames(seg.read_bytes())]


def _open_intents(spool_dir: Path) -> list[intents_mod.Intent]:
    return intents_mod.unresolved(_frames(spool_dir))


def _spooled_elsewhere(root: Path, victim_dir: Path, event_id: str) -> bool:
    """A record with ``event_id`` sits in a spool other than the victim's."""
    return any(not intents_mod.is_marker(f) and intents_mod.record_event_id(f) == event_id
               for d in root.rglob("p*") if d.is_dir() and d != victim_dir for f in _frames(d))


# -- in-process: the live exporter's hold, containment --------------------------------------------------


def _ack(processor: Any) -> tuple[int, int]:
    seg, off = (processor._spool.path / "ack").read_text().split()  # noqa: SLF001 - read only
    return int(seg), int(off)


def test_an_open_intent_holds_the_ack_file_but_not_the_export(delivery) -> None:
    rt = delivery.start(OTEL_AUDIT_SPOOL_MAX_BYTES="256KiB")  # 32 KiB segments: the hold spans two
    processor = rt.processor
    released = containment.counts["intent hold"]
    delivery.records()  # the lifecycle records are exported: the ack file is at the end of the spool
    intent_at = _ack(processor)
    event_id = new_event_id()
    rt.note_intent(event_id, dict(INTENT_ATTRIBUTES))
    for n in range(60):
        otel_audit.record("configuration", "config_change", attributes={"app.n": n})
    records = delivery.records()
    assert len([r for r in records if r["attributes"].get("app.n") is not None]) == 60  # sent meanwhile
    assert not [r for r in records if r["attributes"]["audit.event_id"] == event_id]  # the intent is not a record
    assert _ack(processor) == intent_at  # ... but the persisted cursor stays where the intent was read
    segments = sorted(processor._spool.path.glob("*.seg"))  # noqa: SLF001
    assert len(segments) >= 2 and segments[0].name == f"{intent_at[0]:012d}.seg"
    assert containment.counts["intent hold"] == released  # under a quarter of the limit: still held

    rt.resolve_intent(event_id)
    otel_audit.record("configuration", "config_change", attributes={"app.n": 60})
    delivery.records()
    assert _ack(processor)[0] == int(sorted(processor._spool.path.glob("*.seg"))[-1].stem)  # released
    assert len(list(processor._spool.path.glob("*.seg"))) == 1
    assert not containment.counts.get("spool decode")


def test_an_intent_that_never_ends_holds_at_most_a_quarter_of_the_spool(delivery) -> None:
    """A request whose record never comes (it failed, an adapter bug) must not fill the spool."""
    rt = delivery.start(OTEL_AUDIT_SPOOL_MAX_BYTES="128KiB", OTEL_AUDIT_OVERFLOW="drop_newest")
    processor = rt.processor
    before = containment.counts["intent hold"]
    rt.note_intent(new_event_id(), dict(INTENT_ATTRIBUTES))  # never superseded nor resolved
    for n in range(300):  # ~2.5 times the spool limit
        otel_audit.record("configuration", "config_change", attributes={"app.n": n})
        if n % 50 == 49:
            delivery.records()  # the exporter keeps up; only the hold could fill the spool
    assert len([r for r in delivery.records() if r["attributes"].get("app.n") is not None]) == 300
    assert processor.stats.dropped == 0
    assert containment.counts["intent hold"] == before + 1  # released once, and said so
    assert processor.spool_status()["bytes"] <= 128 * 1024 // 4 + processor.options.segment_bytes


def test_status_does_not_count_intent_frames_as_records(delivery) -> None:
    rt = delivery.start(OTEL_AUDIT_EXPORTER="otlp", OTEL_EXPORTER_OTLP_LOGS_ENDPOINT="http://127.0.0.1:9/v1/logs",
                        OTEL_EXPORTER_OTLP_LOGS_TIMEOUT="1", OTEL_AUDIT_FLUSH_TIMEOUT_MS="100")  # nothing leaves
    event_id = new_event_id()
    rt.note_intent(event_id, dict(INTENT_ATTRIBUTES))
    otel_audit.record("configuration", "config_change")
    rt.resolve_intent(event_id)
    assert spool_status(delivery.spool)["records_pending"] == rt.processor.stats.spooled == 3  # start, policy_loaded, change


def test_note_intent_is_contained_when_open_and_refuses_when_closed(delivery) -> None:
    blocker = delivery.tmp_path / "not-a-dir"
    blocker.write_text("a regular file where the spool directory should be\n")
    delivery.monkeypatch.setenv("OTEL_AUDIT_SPOOL_DIR", str(blocker / "spool"))
    rt = delivery.start(OTEL_AUDIT_FAIL_MODE="open")
    before = containment.counts["intent"]
    dropped = rt.processor.stats.dropped
    assert rt.note_intent(new_event_id(), dict(INTENT_ATTRIBUTES)) is None
    assert containment.counts["intent"] == before + 1
    assert rt.processor.stats.dropped == dropped + 1  # counted like a record that did not become durable

    rt = delivery.start(OTEL_AUDIT_FAIL_MODE="closed")
    with pytest.raises(AuditUnavailable) as refused:  # the change must not happen unaudited
        rt.note_intent(new_event_id(), dict(INTENT_ATTRIBUTES))
    assert CARD not in str(refused.value)
    rt.resolve_intent(new_event_id())  # the request is over: never raises
