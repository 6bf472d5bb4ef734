"""``otel-audit status``: what is waiting in a spool directory, read from disk (no running process needed)."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from otel_audit.delivery.loss import read_loss_file
from otel_audit.delivery.spool import ENDED_FILE, HEADER, count_frames, iter_frames, spool_dirs


def _owner_alive(path: Path) -> bool:
    try:
        fd = os.open(path / "lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _oldest_record_time(segment: Path, offset: int) -> int | None:
    try:
        with open(segment, "rb") as handle:
            handle.seek(offset)
            header = handle.read(HEADER.size)
            if len(header) < HEADER.size:
                return None
            length, _ = HEADER.unpack(header)
            data = header + handle.read(length)
    except OSError:
        return None
    for payload, _end in iter_frames(data):
        try:
            return int(json.loads(payload.partition(b"\x1e")[0])[2])
        except (ValueError, IndexError, TypeError):
            return None
    return None


def _process_dirs(root: Path) -> list[Path]:
    """Process spools directly under ``root`` or under its per-destination subdirectories."""
    found = list(spool_dirs(root))
    try:
        subdirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "p"))]
    except OSError:
        subdirs = []
    for sub in sorted(subdirs):
        found.extend(spool_dirs(sub))
    return found


def spool_status(root: Path) -> dict[str, Any]:
    processes = []
    now = time.time_ns()
    for path in _process_dirs(root):
        try:
            meta = json.loads((path / "meta.json").read_bytes())
        except (OSError, ValueError):
            meta = {}
        try:
            ack_seg, ack_off = (int(x) for x in (path / "ack").read_text().split())
        except (OSError, ValueError):
            ack_seg, ack_off = 1, 0
        pending = pending_bytes = disk = 0
        oldest: int | None = None
        for segment in sorted(path.glob("*.seg")):
            try:
                number = int(segment.stem)
                disk += segment.stat().st_size
            except (ValueError, OSError):
                continue
            if number < ack_seg:
                continue
            start = ack_off if number == ack_seg else 0
            count, size = count_frames(segment, start)
            if count and oldest is None:
                oldest = _oldest_record_time(segment, start)
            pending += count
            pending_bytes += size
        lost = read_loss_file(path)
        processes.append({
            "dir": str(path.relative_to(root)),
            "pid": meta.get("pid"),
            "alive": _owner_alive(path),
            "chain_id": meta.get("chain_id"),
            "service": (meta.get("resource") or {}).get("service.name"),
            "destination": meta.get("destination"),
            "records_pending": pending,
            "bytes_pending": pending_bytes,
            "bytes_on_disk": disk,
            "oldest_age_s": round((now - oldest) / 1e9, 3) if oldest else None,
            "records_lost": int(lost.get("total") or 0),
            "lost_undeclared": int(lost.get("total") or 0) - int(lost.get("declared") or 0),
            "lost_reasons": (lost.get("pending") or {}).get("reasons") or {},
        })
    ended: list[str] = []
    for directory in {root, *(p.parent for p in _process_dirs(root))}:
        try:
            ended += (directory / ENDED_FILE).read_text().split()
        except OSError:
            pass
    ages = [p["oldest_age_s"] for p in processes if p["oldest_age_s"] is not None]
    return {
        "spool_dir": str(root),
        "exists": root.is_dir(),
        "records_pending": sum(p["records_pending"] for p in processes),
        "bytes_pending": sum(p["bytes_pending"] for p in processes),
        "bytes_on_disk": sum(p["bytes_on_disk"] for p in processes),
        "oldest_age_s": max(ages) if ages else None,
        "records_lost": sum(p["records_lost"] for p in processes),
        "lost_undeclared": sum(p["lost_undeclared"] for p in processes),
        "processes": processes,
        "ended_chains": ended,
    }


def describe_destination(destination: dict[str, Any] | None) -> str:
    """One line: ``OTLP grpc to http://collector:4317 (protocol from …; endpoint from …)``."""
    if not destination:
        return "unknown (spooled by an older otel-audit)"
    if destination.get("exporter") == "otlp":
        return (f"OTLP {destination['protocol']} to {destination['endpoint']} (protocol from "
                f"{destination['protocol_from']}; endpoint from {destination['endpoint_from']})")
    if destination.get("exporter") == "sink":
        return f"the embedded sink {destination.get('path')}"
    return str(destination.get("exporter"))


def format_status(status: dict[str, Any]) -> str:
    header = []
    if status.get("destination"):
        header.append(f"a process started now under opentelemetry-instrument sends to: {describe_destination(status['destination'])}")
    if status.get("warning"):
        header.append(f"WARNING: {status['warning']}")
    if not status["exists"]:
        return "\n".join([*header, f"spool {status['spool_dir']}: does not exist (nothing spooled yet)"])
    lines = [*header,
        f"spool {status['spool_dir']}: {status['records_pending']} record(s) pending, "
        f"{status['bytes_pending']} bytes pending, {status['bytes_on_disk']} bytes on disk, "
        f"oldest {status['oldest_age_s'] if status['oldest_age_s'] is not None else '-'} s",
    ]
    if status["records_lost"]:
        lines.append(f"LOST: {status['records_lost']} record(s) could not be made durable; "
                     f"{status['lost_undeclared']} not yet declared in the chain (audit.audit_system.records_lost)")
    for p in status["processes"]:
        state = "running" if p["alive"] else "dead (will be adopted by the next otel-audit process)"
        lost = ""
        if p["records_lost"]:
            reasons = ", ".join(f"{r}={n}" for r, n in sorted(p["lost_reasons"].items()))
            lost = f", LOST {p['records_lost']} ({p['lost_undeclared']} undeclared{': ' + reasons if reasons else ''})"
        lines.append(f"  {p['dir']}: pid {p['pid']} {state}, {p['records_pending']} pending, "
                     f"{p['bytes_on_disk']} bytes, oldest {p['oldest_age_s'] if p['oldest_age_s'] is not None else '-'} "
                     f"s{lost}")
        lines.append(f"    sends to: {describe_destination(p.get('destination'))}")
    return "\n".join(lines)
