"""Adopting the spools of dead processes: what the exporter thread does before it sends their records.

A spool whose owner died (``flock`` free) is taken over: its unresolved intents are reported as
interrupted records first (through the runtime's hook; docs/delivery.md), then its chain end becomes
a parent of ours and its undeclared losses are ours to declare. The processor applies what each
adoption yields (:class:`Adopted`) to its own state; this module reads and writes only the dead
process's spool directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_audit.delivery import intents as intents_mod
from otel_audit.delivery import spool as spool_mod
from otel_audit.delivery.loss import read_loss_file
from otel_audit.delivery.options import RecordNotDurable
from otel_audit.delivery.positions import last_sealed_seq
from otel_audit.delivery.spool import ProcessSpool, encode_frame
from otel_audit.errors import containment


@dataclass
class Adopted:
    """One dead process's spool, taken over: send its records, name its chain end, declare its losses."""

    spool: ProcessSpool
    parent: str | None  # ``chain_id:last_seq`` for our next record's ``audit.chain.parent``
    chain_id: str | None
    lost_pending: Any  # its losses not declared yet (from its ``lost`` file), or None


def adopt_dead_spools(root: Path, skip: set[Path], segment_bytes: int, default_scope: str,
                      on_interrupted: Callable[[intents_mod.Intent, Any], None] | None) -> Iterator[Adopted]:
    """Take over every spool under ``root`` whose owner is dead (but those in ``skip``), one at a time.

    A spool whose interrupted intents could not all be reported (our spool refused them) is left
    for the next scan, before any of its records is sent."""
    for path in spool_mod.spool_dirs(root):
        if path in skip:
            continue
        orphan = ProcessSpool.try_adopt(path, segment_bytes)
        if orphan is None:
            continue
        (path / "reserve").unlink(missing_ok=True)  # a dead process's ballast: give the space back
        if not report_interrupted(orphan, on_interrupted):
            orphan.close(remove=False)  # retried at the next scan, before any of it is sent
            continue
        state = orphan.read_state()
        chain_id = state.get("chain_id") or orphan.meta.get("chain_id")
        last_seq = max(int(state.get("seq") or 0), last_sealed_seq(orphan))
        lost = read_loss_file(path)
        lost_pending = None
        if chain_id and lost.get("pending") and int(lost.get("total") or 0) > int(lost.get("declared") or 0):
            lost_pending = lost["pending"]  # it died before it could declare them
        orphan.resource_obj = Resource(orphan.meta.get("resource") or {}, orphan.meta.get("schema_url"))
        scope = orphan.meta.get("scope") or {}
        orphan.scope_obj = InstrumentationScope(scope.get("name") or default_scope, scope.get("version"))
        yield Adopted(orphan, f"{chain_id}:{last_seq}" if chain_id and last_seq > 0 else None, chain_id, lost_pending)


def report_interrupted(orphan: ProcessSpool, hook: Callable[[intents_mod.Intent, Any], None] | None) -> bool:
    """Report the dead process's unresolved intents as records; False: not all could be.

    Each reported intent then gets a resolve marker in the orphan's spool, so an adopter that
    dies before the orphan is drained does not make the next one report it again (dying between
    the record and the marker does: at-least-once, same ``audit.event_id``).
    """
    if hook is None:
        return True
    try:
        found = intents_mod.unresolved(intents_mod.spooled_frames(orphan))
    except Exception as exc:  # noqa: BLE001 - an unreadable spool still gets its records sent
        containment.record("intent adoption", exc)
        return True
    reported, complete = [], True
    for intent in found:
        try:
            hook(intent, orphan.meta)
        except RecordNotDurable:
            complete = False  # our spool cannot take it now: keep the orphan, try again later
            break
        except Exception as exc:  # noqa: BLE001 - a bug must not keep the orphan's records back
            containment.record("intent adoption", exc)
            continue
        reported.append(intent.event_id)
    if reported:
        try:
            orphan.append_to_adopted(b"".join(encode_frame(intents_mod.resolve_payload(event_id))
                                              for event_id in reported))
        except OSError as exc:
            containment.record("intent adoption", exc)  # a later adopter may report them again
    return complete
