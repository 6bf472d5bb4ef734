"""The hash chain: every record names its predecessor's MAC, so edits, deletions, insertions and
reorderings show up in ``otel-audit verify``.

Sealing (``seq``/``prev``/``mac``) happens on the spool's writer thread, in exactly the order the
records are appended, so chain order is spool order by construction and no lock is held across the
application's threads. With ``OTEL_AUDIT_CHAIN_KEY`` the MAC is HMAC-SHA256; without one it is a
plain SHA-256 chain, which catches accidental edits and truncation but not a deliberate forger
(anyone can recompute it) - ``verify`` says so.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Mapping

from otel_audit.config import chain_key_as_set
from otel_audit.delivery.canonical import sealed_bytes

ALG_HMAC = "hmac-sha256"
ALG_UNKEYED = "sha256"
UNKEYED_ID = "none"


class ChainKey:
    """A MAC key and its id. ``repr`` and ``str`` never show the secret."""

    __slots__ = ("key_id", "_secret", "_inner", "_outer")

    def __init__(self, key_id: str, secret: bytes | None) -> None:
        self.key_id = key_id
        self._secret = secret
        # HMAC (RFC 2104) from SHA-256 states with the padded key already absorbed, copied per
        # record: the same digest as ``hmac.new``, without its Python-level wrapper per call.
        self._inner = self._outer = None
        if secret:
            block = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
            block = block.ljust(64, b"\0")
            self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
            self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    @property
    def alg(self) -> str:
        return ALG_HMAC if self._secret else ALG_UNKEYED

    def mac(self, data: bytes, more: bytes = b"") -> str:
        """MAC of ``data + more`` (two parts, so callers need not copy a record to append to it)."""
        inner = self._inner.copy() if self._inner is not None else hashlib.sha256()
        inner.update(data)
        if more:
            inner.update(more)
        if self._outer is None:
            return inner.hexdigest()
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def __repr__(self) -> str:
        return f"ChainKey(key_id={self.key_id!r}, alg={self.alg!r})"

    __str__ = __repr__

    @classmethod
    def from_config(cls, secret: str | None, key_id: str | None) -> "ChainKey":
        if secret:
            return cls(key_id or "default", secret.encode("utf-8"))
        return cls(UNKEYED_ID, None)


def new_chain_id() -> str:
    return uuid.uuid4().hex


@dataclass
class ChainState:
    """Per-process chain position. Only the spool writer thread mutates it."""

    chain_id: str = field(default_factory=new_chain_id)
    seq: int = 0
    prev: str = ""
    pending_parents: list[str] = field(default_factory=list)  # "chain_id:last_seq", named on the next record
    forked_from: str | None = None  # "chain_id:seq" of the parent process at fork, on the first record

    def seal(self, key: ChainKey, canonical: bytes) -> tuple[int, str, str, list[str] | None, str | None]:
        """Next (seq, prev, mac, parents, forked_from) for a record whose canonical bytes are given."""
        seq, prev = self.seq + 1, self.prev
        parents = self.pending_parents or None
        forked_from = self.forked_from if not prev else None  # on the first durable record (seq 1 may be lost)
        if parents is None and forked_from is None:
            # ``prev`` is this chain's own last MAC (a hex digest) or "": sealed_bytes' bytes, unchecked
            sealed = f'\n[{seq},"{prev}",null,null]'.encode("ascii")
        else:
            sealed = b"\n" + sealed_bytes(seq, prev, parents, forked_from)
        return seq, prev, key.mac(canonical, sealed), parents, forked_from

    def advance(self, seq: int, mac: str, named_parents: bool) -> None:
        self.seq = seq
        self.prev = mac
        if named_parents:
            self.pending_parents = []

    def snapshot(self) -> tuple[int, str, list[str]]:
        return self.seq, self.prev, list(self.pending_parents)

    def restore(self, snap: tuple[int, str, list[str]]) -> None:
        """Undo seals whose records never reached the disk (failed write): the chain stays gap-free."""
        self.seq, self.prev, self.pending_parents = snap[0], snap[1], list(snap[2])

    def fork(self) -> "ChainState":
        """The child's chain: a fresh id that names where in the parent's chain it split off."""
        return ChainState(forked_from=f"{self.chain_id}:{self.seq}")


def load_keys_for_verify(environ: Mapping[str, str] | None = None, key_file: str | None = None) -> dict[str, bytes]:
    """Keys by id for verification: OTEL_AUDIT_CHAIN_KEY(_ID) and/or a file of ``KEY_ID:SECRET`` lines."""
    keys: dict[str, bytes] = {}
    from_env = chain_key_as_set(environ)
    if from_env is not None:
        keys[from_env[0]] = from_env[1].encode("utf-8")
    if key_file:
        with open(key_file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\n")
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                key_id, sep, value = line.partition(":")
                if not sep or not key_id.strip() or not value:
                    raise ValueError(f"{key_file}:{number}: expected KEY_ID:SECRET")
                keys[key_id.strip()] = value.encode("utf-8")
    return keys
