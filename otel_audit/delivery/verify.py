"""``otel-audit verify``: check exported audit records against their hash chains.

Reads the embedded sink's JSON lines and OTLP JSON (the Collector's file exporter), groups records
by ``audit.chain.id`` and reports, naming file and line: records whose content or chain fields were
**modified**, records **inserted** (a MAC that does not verify and no place in the chain),
**deleted** records (sequence gaps, at the start of a chain, and at the end of a chain that a later
chain names as its parent), and **reordered** records (out of sequence in file order). Exact
duplicates are expected with at-least-once delivery and are not a problem.
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


@dataclass(frozen=True)
class Problem:
    kind: str  # modified | inserted | deleted | reordered | unchained | unverifiable | broken_link
    chain: str
    where: str  # file:line, or a range description
    seq: int | None
    detail: str

    def __str__(self) -> str:
        seq = f" seq {self.seq}" if self.seq is not None else ""
        return f"{self.kind.upper()}: {self.where} chain {self.chain[:12]}{seq}: {self.detail}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chains: int = 0
    records: int = 0
    duplicates: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Entry:
    record: ExportedRecord
    seq: int | None
    prev: str
    mac: str
    valid: bool = False

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


def verify_records(records: Iterable[ExportedRecord], keys: Mapping[str, bytes], allow_reorder: bool = False) -> Report:
    report = Report()
    chains: dict[str, list[_Entry]] = {}
    for record in records:
        attrs = record.attributes
        if not str(record.event_name or "").startswith("audit.") and CHAIN_ID not in attrs:
            continue  # not an audit record (other application logs in the same file)
        report.records += 1
        chain_id = attrs.get(CHAIN_ID)
        if not chain_id:
            report.problems.append(Problem("unchained", "-", record.where, None,
                                           f"audit record {attrs.get(EVENT_ID, '?')} carries no audit.chain.id"))
            continue
        seq = attrs.get(CHAIN_SEQ)
        entry = _Entry(record, seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
                       str(attrs.get(CHAIN_PREV) or ""), str(attrs.get(CHAIN_MAC) or ""))
        chains.setdefault(str(chain_id), []).append(entry)
    report.chains = len(chains)
    max_seq: dict[str, int] = {}
    for chain_id, entries in chains.items():
        _verify_chain(chain_id, entries, keys, allow_reorder, report)
        seqs = [e.seq for e in entries if e.seq is not None and e.valid]
        max_seq[chain_id] = max(seqs) if seqs else 0
    _check_chain_ends(chains, max_seq, report)
    return report


def _verify_chain(chain_id: str, entries: list[_Entry], keys: Mapping[str, bytes], allow_reorder: bool,
                  report: Report) -> None:
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
        return
    if any(e.record.attributes.get(CHAIN_ALG) == ALG_UNKEYED for e in entries):
        report.notes.append(f"chain {chain_id[:12]} is unkeyed (SHA-256): it detects accidental changes, "
                            "not deliberate tampering")

    valid_by_seq: dict[int, _Entry] = {}
    unique: list[_Entry] = []
    for entry in entries:
        if not entry.valid:
            continue
        seen = valid_by_seq.get(entry.seq)  # type: ignore[arg-type]
        if seen is None:
            valid_by_seq[entry.seq] = entry  # type: ignore[index]
            unique.append(entry)
        elif seen.mac == entry.mac:
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

    # Deletions: every sequence number from 1 to the highest seen must be present.
    present = sorted(occupied)
    if present:
        wheres = {e.seq: e.record.where for e in entries if e.seq is not None}
        if present[0] > 1:
            report.problems.append(Problem("deleted", chain_id, f"before {wheres[present[0]]}", 1,
                                           f"records 1..{present[0] - 1} missing at the start of the chain"))
        for low, high in zip(present, present[1:]):
            if high > low + 1:
                span = f"{low + 1}" if high == low + 2 else f"{low + 1}..{high - 1}"
                report.problems.append(Problem("deleted", chain_id, f"between {wheres[low]} and {wheres[high]}",
                                               low + 1, f"record(s) {span} missing"))
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


def _check_chain_ends(chains: dict[str, list[_Entry]], max_seq: dict[str, int], report: Report) -> None:
    """A chain that names an ended parent ("id:last_seq") proves how long the parent was."""
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
                if max_seq.get(parent, 0) < int(last):
                    have = max_seq.get(parent, 0)
                    span = f"{have + 1}" if int(last) == have + 1 else f"{have + 1}..{last}"
                    report.problems.append(Problem(
                        "deleted", parent, f"end of chain (named by {entry.record.where})", have + 1,
                        f"record(s) {span} missing at the end of the chain"))


def verify_files(paths: Iterable[str], keys: Mapping[str, bytes], allow_reorder: bool = False) -> Report:
    def records() -> Iterable[ExportedRecord]:
        for path in paths:
            yield from read_exported(path)

    return verify_records(records(), keys, allow_reorder)


def format_report(report: Report) -> str:
    lines = [str(p) for p in report.problems]
    lines += [f"note: {n}" for n in dict.fromkeys(report.notes)]
    if report.duplicates:
        lines.append(f"note: {report.duplicates} duplicate record(s) (at-least-once delivery; dedupe by audit.event_id)")
    status = "OK" if report.ok else f"FAILED: {len(report.problems)} problem(s)"
    lines.append(f"{status}: {report.records} audit record(s) in {report.chains} chain(s)")
    return "\n".join(lines)


def report_as_dict(report: Report) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "records": report.records,
        "chains": report.chains,
        "duplicates": report.duplicates,
        "problems": [p.__dict__ for p in report.problems],
        "notes": list(dict.fromkeys(report.notes)),
    }
