"""``otel-audit verify``: check exported audit records against their hash chains.

Reads the embedded sink's JSON lines and OTLP JSON (the Collector's file exporter), groups records
by ``audit.chain.id`` and reports, naming file and line: records whose content or chain fields were
**modified**, records **inserted** (a MAC that does not verify and no place in the chain),
**deleted** records (sequence gaps, at the start of a chain, and at the end of a chain that a later
chain names as its parent), and **reordered** records (out of sequence in file order). Exact
duplicates are expected with at-least-once delivery and are not a problem.

Each chain also gets a state: **CLOSED** (its ``stop`` record is there, or a later chain names its
end), **OPEN-SINCE** the time of its last checkpoint (nothing proves that records after it were
not cut), or **TRUNCATED** (a checkpoint, stop record or later chain proves records beyond the last
one present). Gaps that the chain itself declares (``audit.audit_system.records_lost``: records
that could not be made durable) are reported as declared gaps, not as deletions.
"""

from __future__ import annotations

import hashlib
import hmac
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from otel_audit.delivery.canonical import (
    CHAIN_ALG,
    CHAIN_FORKED_FROM,
    CHAIN_ID,
    CHAIN_KEY_ID,
    CHAIN_MAC,
    CHAIN_PARENT,
    CHAIN_PREV,
    CHAIN_SEQ,
    EVENT_ID,
    ExportedRecord,
    mac_input,
    read_exported,
)
from otel_audit.delivery.chain import ALG_HMAC, ALG_UNKEYED
from otel_audit.delivery.loss import parse_ranges

STOP_EVENT = "audit.audit_system.stop"
CHECKPOINT_EVENT = "audit.audit_system.checkpoint"
LOST_EVENT = "audit.audit_system.records_lost"


@dataclass(frozen=True)
class Problem:
    kind: str  # modified | inserted | deleted | reordered | unchained | unverifiable | broken_link | open | stale
    chain: str
    where: str  # file:line, or a range description
    seq: int | None
    detail: str

    def __str__(self) -> str:
        seq = f" seq {self.seq}" if self.seq is not None else ""
        return f"{self.kind.upper()}: {self.where} chain {self.chain[:12]}{seq}: {self.detail}"


@dataclass(frozen=True)
class ChainState:
    """How a chain ends: ``closed``, ``open`` (since ``since``, unix nano) or ``truncated``."""

    chain: str
    state: str
    first_seq: int
    last_seq: int
    since: int | None
    detail: str

    def __str__(self) -> str:
        label = {"closed": "CLOSED", "truncated": "TRUNCATED"}.get(self.state) or f"OPEN-SINCE {_iso(self.since)}"
        return f"{label}: chain {self.chain[:12]} seq {self.first_seq}..{self.last_seq}: {self.detail}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chains: int = 0
    records: int = 0
    duplicates: int = 0
    declared: list[Problem] = field(default_factory=list)  # gaps the chain itself declares (records_lost)
    states: list[ChainState] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem and no declared gap (a declared loss is still a loss: exit status 3)."""
        return not self.problems and not self.declared

    @property
    def open_chains(self) -> list[ChainState]:
        return [state for state in self.states if state.state == "open"]


def _iso(unix_nano: int | None) -> str:
    if not unix_nano:
        return "?"
    import datetime

    moment = datetime.datetime.fromtimestamp(unix_nano / 1e9, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class _Entry:
    record: ExportedRecord
    seq: int | None
    prev: str
    mac: str
    valid: bool = False
    digest: bool = False  # read from a checkpoint file (--digest): proves length, not part of file order

    @property
    def event_id(self) -> str:
        return str(self.record.attributes.get(EVENT_ID) or "?")


def _expected_mac(record: ExportedRecord, seq: int, prev: str, keys: Mapping[str, bytes]) -> str | None:
    attrs = record.attributes
    data = mac_input(record.canonical(), seq, prev, attrs.get(CHAIN_PARENT), attrs.get(CHAIN_FORKED_FROM))
    alg = attrs.get(CHAIN_ALG)
    if alg == ALG_UNKEYED:
        return hashlib.sha256(data).hexdigest()
    key = keys.get(str(attrs.get(CHAIN_KEY_ID)))
    if alg != ALG_HMAC or key is None:
        return None
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _longest_increasing(seqs: list[int]) -> set[int]:
    """Indexes of one longest strictly increasing subsequence (patience sorting)."""
    tails: list[int] = []
    tail_index: list[int] = []
    parent = [-1] * len(seqs)
    for i, value in enumerate(seqs):
        pos = bisect_left(tails, value)
        if pos == len(tails):
            tails.append(value)
            tail_index.append(i)
        else:
            tails[pos] = value
            tail_index[pos] = i
        parent[i] = tail_index[pos - 1] if pos else -1
    keep: set[int] = set()
    i = tail_index[-1] if tail_index else -1
    while i >= 0:
        keep.add(i)
        i = parent[i]
    return keep


def verify_records(records: Iterable[ExportedRecord], keys: Mapping[str, bytes], allow_reorder: bool = False,
                   digest: Iterable[ExportedRecord] = (), expect_closed: bool = False,
                   max_open_age_s: float | None = None, now_unix_nano: int | None = None) -> Report:
    """``digest``: records of a separate checkpoint destination (``OTEL_AUDIT_CHECKPOINT_PATH``);
    ``expect_closed`` / ``max_open_age_s``: make open chains (or a trail without one) problems."""
    report = Report()
    chains: dict[str, list[_Entry]] = {}
    tagged = [(record, False) for record in records]
    tagged += [(record, True) for record in digest]
    for record, from_digest in tagged:
        attrs = record.attributes
        if not str(record.event_name or "").startswith("audit.") and CHAIN_ID not in attrs:
            continue  # not an audit record (other application logs in the same file)
        if not from_digest:
            report.records += 1
        chain_id = attrs.get(CHAIN_ID)
        if not chain_id:
            report.problems.append(Problem("unchained", "-", record.where, None,
                                           f"audit record {attrs.get(EVENT_ID, '?')} carries no audit.chain.id"))
            continue
        seq = attrs.get(CHAIN_SEQ)
        entry = _Entry(record, seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
                       str(attrs.get(CHAIN_PREV) or ""), str(attrs.get(CHAIN_MAC) or ""), digest=from_digest)
        chains.setdefault(str(chain_id), []).append(entry)
    report.chains = len(chains)
    max_seq: dict[str, int] = {}
    declared: dict[str, set[int]] = {}
    adopted = _adopted_declarations(chains, keys)
    for chain_id, entries in chains.items():
        declared[chain_id] = _verify_chain(chain_id, entries, keys, allow_reorder, report, adopted.get(chain_id))
        seqs = [e.seq for e in entries if e.seq is not None and e.valid]
        max_seq[chain_id] = max(seqs) if seqs else 0
    named_ends = _check_chain_ends(chains, max_seq, declared, report)
    for chain_id, entries in chains.items():
        report.states.append(_chain_state(chain_id, entries, named_ends.get(chain_id)))
    _judge_open_chains(report, chains, expect_closed, max_open_age_s, now_unix_nano)
    return report


def _chain_state(chain_id: str, entries: list[_Entry], named_end: tuple[str, str] | None) -> ChainState:
    """CLOSED, OPEN-SINCE or TRUNCATED, from the valid records of one chain."""
    valid = [e for e in entries if e.valid and e.seq is not None]
    if not valid:
        return ChainState(chain_id, "open", 0, 0, None, "no verifiable record")
    in_file = [e.seq for e in valid if not e.digest]
    last_in_file = max(in_file, default=0)
    highest = max(e.seq for e in valid)  # type: ignore[type-var]
    first = min(in_file, default=highest)
    stop = [e for e in valid if e.record.event_name == STOP_EVENT and not e.digest]
    if highest > last_in_file:
        proof = max((e for e in valid if e.digest), key=lambda e: e.seq)  # type: ignore[arg-type,return-value]
        if not in_file:
            return ChainState(chain_id, "truncated", 0, 0, None,
                              f"none of its records is in the trail; the checkpoint file proves seq {highest} "
                              f"({proof.record.where})")
        return ChainState(chain_id, "truncated", first, last_in_file, None,
                          f"the checkpoint file proves seq {highest} ({proof.record.where}); the records after "
                          f"seq {last_in_file} are missing")
    if named_end is not None and named_end[0] == "truncated":
        return ChainState(chain_id, "truncated", first, last_in_file, None, named_end[1])
    if stop:
        return ChainState(chain_id, "closed", first, last_in_file, None, f"stop record at {stop[-1].record.where}")
    if named_end is not None:
        return ChainState(chain_id, "closed", first, last_in_file, None, named_end[1])
    checkpoints = [e for e in valid if e.record.event_name == CHECKPOINT_EVENT and not e.digest]
    if checkpoints:
        last = max(checkpoints, key=lambda e: e.seq)  # type: ignore[arg-type,return-value]
        return ChainState(chain_id, "open", first, last_in_file, last.record.time_unix_nano,
                          f"last checkpoint seq {last.seq} at {last.record.where}; later records are not proven "
                          "complete")
    start = min(valid, key=lambda e: e.seq)  # type: ignore[arg-type,return-value]
    return ChainState(chain_id, "open", first, last_in_file, start.record.time_unix_nano,
                      "no checkpoint and no stop record: its tail is not proven complete")


def _judge_open_chains(report: Report, chains: dict[str, list[_Entry]], expect_closed: bool,
                       max_open_age_s: float | None, now_unix_nano: int | None) -> None:
    import time

    now = now_unix_nano or time.time_ns()
    for state in report.open_chains:
        if expect_closed:
            report.problems.append(Problem("open", state.chain, "-", state.last_seq,
                                           f"chain is not closed (--expect-closed): {state.detail}"))
        elif max_open_age_s is not None and (not state.since or now - state.since > max_open_age_s * 1e9):
            report.problems.append(Problem("open", state.chain, "-", state.last_seq,
                                           f"open since {_iso(state.since)}, longer than --max-open-age "
                                           f"{max_open_age_s:g} s: {state.detail}"))
    if max_open_age_s is not None and not expect_closed and chains and not report.open_chains:
        newest = max((e.record.time_unix_nano or 0 for entries in chains.values() for e in entries if e.valid),
                     default=0)
        if now - newest > max_open_age_s * 1e9:
            report.problems.append(Problem(
                "stale", "-", "-", None,
                f"no open chain and the newest record ({_iso(newest)}) is older than --max-open-age: a running "
                "service always has an open chain, so the newest one may have been removed"))


def _adopted_declarations(chains: dict[str, list[_Entry]], keys: Mapping[str, bytes]) -> dict[str, set[int]]:
    """Losses of a dead process's chain declared in its adopter's chain (``audit.lost.chain_id``),
    from declaring records whose MAC verifies."""
    out: dict[str, set[int]] = {}
    for entries in chains.values():
        for entry in entries:
            attrs = entry.record.attributes
            target = attrs.get("audit.lost.chain_id")
            if entry.record.event_name != LOST_EVENT or not target or entry.seq is None:
                continue
            if attrs.get(CHAIN_ALG) == ALG_UNKEYED and keys:
                continue  # a possible forgery (see _verify_chain)
            expected = _expected_mac(entry.record, entry.seq, entry.prev, keys)
            if expected is not None and hmac.compare_digest(expected, entry.mac):
                out.setdefault(str(target), set()).update(parse_ranges(attrs.get("audit.lost.seqs")))
    return out


def _verify_chain(chain_id: str, entries: list[_Entry], keys: Mapping[str, bytes], allow_reorder: bool,
                  report: Report, adopted: set[int] | None = None) -> set[int]:
    unverifiable = set()
    for entry in entries:
        if entry.seq is None:
            continue
        expected = _expected_mac(entry.record, entry.seq, entry.prev, keys)
        if expected is None:
            alg = entry.record.attributes.get(CHAIN_ALG)
            key_id = entry.record.attributes.get(CHAIN_KEY_ID)
            unverifiable.add(f"algorithm {alg!r}, key id {key_id!r}")
            continue
        entry.valid = hmac.compare_digest(expected, entry.mac)
        if entry.valid and entry.record.attributes.get(CHAIN_ALG) == ALG_UNKEYED and keys:
            entry.valid = False
            report.problems.append(Problem("modified", chain_id, entry.record.where, entry.seq,
                                           "unkeyed record in a keyed verification (possible forgery)"))
            entry.seq = None
    for what in sorted(unverifiable):
        report.problems.append(Problem("unverifiable", chain_id, "-", None,
                                       f"no key for {what}; pass it with OTEL_AUDIT_CHAIN_KEY/_ID or --key-file"))
    if unverifiable:
        return set()
    if any(e.record.attributes.get(CHAIN_ALG) == ALG_UNKEYED for e in entries):
        report.notes.append(f"chain {chain_id[:12]} is unkeyed (SHA-256): it detects accidental changes, "
                            "not deliberate tampering")

    valid_by_seq: dict[int, _Entry] = {}
    unique: list[_Entry] = []
    for entry in sorted(entries, key=lambda e: e.digest):  # the file's own copy first, digest copies after
        if not entry.valid:
            continue
        seen = valid_by_seq.get(entry.seq)  # type: ignore[arg-type]
        if seen is None:
            valid_by_seq[entry.seq] = entry  # type: ignore[index]
            if not entry.digest:
                unique.append(entry)
        elif seen.mac == entry.mac:
            if not entry.digest:
                report.duplicates += 1  # at-least-once delivery
        else:
            report.problems.append(Problem("broken_link", chain_id, entry.record.where, entry.seq,
                                           f"two different valid records claim this position (other at "
                                           f"{seen.record.where}): the chain id was reused"))

    occupied = set(valid_by_seq)
    highest_valid = max(occupied, default=0)
    for entry in entries:
        if entry.valid:
            continue
        where = entry.record.where
        if entry.seq is None:
            if entry.record.attributes.get(CHAIN_ALG) != ALG_UNKEYED or not keys:
                report.problems.append(Problem("modified", chain_id, where, None,
                                               f"record {entry.event_id}: chain fields missing or malformed"))
            continue
        before, after = valid_by_seq.get(entry.seq - 1), valid_by_seq.get(entry.seq + 1)
        linked = (before is not None and before.mac == entry.prev) or (after is not None and after.prev == entry.mac)
        if entry.seq not in occupied and (linked or 1 <= entry.seq <= highest_valid + 1):
            occupied.add(entry.seq)
            how = "" if linked else " (modified, or forged into a free position)"
            report.problems.append(Problem("modified", chain_id, where, entry.seq,
                                           f"record {entry.event_id}: content does not match its MAC{how}"))
        else:
            report.problems.append(Problem("inserted", chain_id, where, entry.seq,
                                           f"record {entry.event_id}: MAC does not verify and it has no place "
                                           "in the chain"))

    declared = _declarations(chain_id, valid_by_seq, report) | (adopted or set())

    # Deletions: every sequence number from 1 to the highest seen must be present (or declared lost).
    present = sorted(occupied)
    if present:
        wheres = {e.seq: e.record.where for e in entries if e.seq is not None}
        for low, high in _undeclared_spans(1, present[0] - 1, declared):
            report.problems.append(Problem("deleted", chain_id, f"before {wheres[present[0]]}", low,
                                           f"records {low}..{high} missing at the start of the chain"))
        for before, after in zip(present, present[1:]):
            for low, high in _undeclared_spans(before + 1, after - 1, declared):
                span = f"{low}" if high == low else f"{low}..{high}"
                report.problems.append(Problem("deleted", chain_id, f"between {wheres[before]} and {wheres[after]}",
                                               low, f"record(s) {span} missing"))
        for seq in present:
            entry, nxt = valid_by_seq.get(seq), valid_by_seq.get(seq + 1)
            if entry is not None and nxt is not None and nxt.prev != entry.mac:
                report.problems.append(Problem("broken_link", chain_id, nxt.record.where, seq + 1,
                                               "does not name its predecessor's MAC"))

    # Reordering: in file order, valid records must come in increasing sequence.
    if not allow_reorder and unique:
        seqs = [e.seq for e in unique]  # type: ignore[misc]
        keep = _longest_increasing(seqs)  # type: ignore[arg-type]
        for index, entry in enumerate(unique):
            if index not in keep:
                report.problems.append(Problem("reordered", chain_id, entry.record.where, entry.seq,
                                               f"record {entry.event_id} is out of sequence in file order"))
    return declared


def _declarations(chain_id: str, valid_by_seq: dict[int, _Entry], report: Report) -> set[int]:
    """Sequence numbers this chain declares lost (its valid ``records_lost`` records), reported as
    declared gaps."""
    declared: set[int] = set()
    for seq in sorted(valid_by_seq):
        entry = valid_by_seq[seq]
        if entry.record.event_name != LOST_EVENT:
            continue
        attrs = entry.record.attributes
        target = str(attrs.get("audit.lost.chain_id") or chain_id)
        if target == chain_id:
            declared |= parse_ranges(attrs.get("audit.lost.seqs"))
        reasons = ", ".join(str(r) for r in attrs.get("audit.lost.reasons") or ()) or "unknown"
        shown = ",".join(str(s) for s in attrs.get("audit.lost.seqs") or ()) or "none"
        report.declared.append(Problem(
            "declared_gap", target, entry.record.where, seq,
            f"{attrs.get('audit.lost.count', '?')} record(s) could not be made durable ({reasons}) between "
            f"{_iso(attrs.get('audit.lost.first_unix_nano'))} and {_iso(attrs.get('audit.lost.last_unix_nano'))}; "
            f"sequence numbers skipped: {shown}"))
    return declared


def _undeclared_spans(low: int, high: int, declared: set[int]) -> list[tuple[int, int]]:
    """The runs of ``low..high`` (inclusive) not in ``declared``."""
    if high < low:
        return []
    if not declared:
        return [(low, high)]
    spans: list[tuple[int, int]] = []
    start = None
    for seq in range(low, high + 1):
        if seq in declared:
            if start is not None:
                spans.append((start, seq - 1))
                start = None
        elif start is None:
            start = seq
    if start is not None:
        spans.append((start, high))
    return spans


def _check_chain_ends(chains: dict[str, list[_Entry]], max_seq: dict[str, int], declared: dict[str, set[int]],
                      report: Report) -> dict[str, tuple[str, str]]:
    """A chain that names an ended parent ("id:last_seq") proves how long the parent was. Returns,
    for each named parent, ``(state, what proves it)``: ``truncated`` when records up to the named
    end are missing, else ``closed``."""
    ends: dict[str, tuple[str, str]] = {}
    for chain_id, entries in chains.items():
        for entry in entries:
            if not entry.valid:
                continue
            attrs = entry.record.attributes
            named = list(attrs.get(CHAIN_PARENT) or [])
            if attrs.get(CHAIN_FORKED_FROM):
                named.append(attrs[CHAIN_FORKED_FROM])
            for ref in named:
                parent, _, last = str(ref).rpartition(":")
                if parent not in chains or not last.isdigit():
                    continue
                proof = f"chain {chain_id[:12]} names its end at seq {last} ({entry.record.where})"
                if ends.get(parent, ("closed",))[0] != "truncated":
                    ends[parent] = ("closed", proof)
                if max_seq.get(parent, 0) < int(last):
                    have = max_seq.get(parent, 0)
                    for low, high in _undeclared_spans(have + 1, int(last), declared.get(parent, set())):
                        span = f"{low}" if high == low else f"{low}..{high}"
                        report.problems.append(Problem(
                            "deleted", parent, f"end of chain (named by {entry.record.where})", low,
                            f"record(s) {span} missing at the end of the chain"))
                        ends[parent] = ("truncated", proof)
    return ends


def verify_files(paths: Iterable[str], keys: Mapping[str, bytes], allow_reorder: bool = False,
                 digest_paths: Iterable[str] = (), **options: Any) -> Report:
    """``options``: ``expect_closed``, ``max_open_age_s``, ``now_unix_nano`` (see :func:`verify_records`)."""
    def records(files: Iterable[str]) -> Iterable[ExportedRecord]:
        for path in files:
            yield from read_exported(path)

    return verify_records(records(paths), keys, allow_reorder, digest=list(records(digest_paths)), **options)


EXIT_OK, EXIT_PROBLEMS, EXIT_UNREADABLE, EXIT_DECLARED_GAPS = 0, 1, 2, 3


def exit_status(report: Report) -> int:
    """0 clean (open chains included, unless --expect-closed / --max-open-age), 1 problems, 3 only
    declared gaps (records the chain says were lost); 2 (unreadable or empty input) is the CLI's."""
    if report.problems:
        return EXIT_PROBLEMS
    return EXIT_DECLARED_GAPS if report.declared else EXIT_OK


def format_report(report: Report) -> str:
    lines = [str(p) for p in report.problems]
    lines += [f"DECLARED GAP: {p.where} chain {p.chain[:12]} seq {p.seq}: {p.detail}" for p in report.declared]
    lines += [str(state) for state in report.states]
    lines += [f"note: {n}" for n in dict.fromkeys(report.notes)]
    if report.duplicates:
        lines.append(f"note: {report.duplicates} duplicate record(s) (at-least-once delivery; dedupe by audit.event_id)")
    counted = f"{report.records} audit record(s) in {report.chains} chain(s)"
    if report.problems:
        status = f"FAILED: {len(report.problems)} problem(s)"
    elif report.declared:
        status = f"DECLARED GAPS: {len(report.declared)} loss declaration(s), otherwise intact"
    elif report.open_chains:
        status = (f"OK ({len(report.open_chains)} chain(s) open: their tails are not proven complete; "
                  "--expect-closed or --max-open-age to require it)")
    else:
        status = "OK"
    lines.append(f"{status}: {counted}")
    return "\n".join(lines)


def report_as_dict(report: Report) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "records": report.records,
        "chains": report.chains,
        "duplicates": report.duplicates,
        "problems": [p.__dict__ for p in report.problems],
        "declared_gaps": [p.__dict__ for p in report.declared],
        "chain_states": [dict(state.__dict__, since=_iso(state.since) if state.since else None)
                         for state in report.states],
        "notes": list(dict.fromkeys(report.notes)),
    }
