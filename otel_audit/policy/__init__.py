"""Audit policy as code: which events are audited, at what level, what routes mean, who the actor is.

:func:`load_policy` turns an ``OTEL_AUDIT_POLICY`` value (file path, inline YAML/JSON or
``pack:NAME``; unset means the built-in default) into a :class:`CompiledPolicy` with ``id``,
``version``, ``hash``, ``redaction``, ``failure_mode``, ``actor_resolver``, ``required_fields``
and ``decide(event) -> Decision | None``. A broken policy raises :class:`PolicyError`; the runtime
then falls back to :func:`fallback_policy` (or refuses to start when fail-closed). docs/policy.md
is the reference.

The room: loading (``source`` finds and reads the document, ``schema_messages`` says schema
errors, ``normalise`` turns one document into a partial policy, ``merge`` resolves ``extends:``
and the ``OTEL_AUDIT_POLICY_*`` overrides, ``loader`` puts them together into a ``PolicyModel``),
deciding (``compiled``, ``classify``, ``globs``, ``required``) and the tools (``explain``, ``lint``,
``plan``, ``cli``). It keeps no per-request state.

It may import the event model and vocabulary (``event``, ``catalogue``, ``action``, ``actors``,
``attributes``, ``outcome``, ``pipeline``'s ``Decision``), ``config`` (every environment read),
``errors`` and ``redaction``; its tools also ``coverage`` (``lint``, ``cli``) and
``delivery.canonical`` (``plan`` reads a recorded trail). Never ``instrumentation``: no framework
knowledge here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from otel_audit.policy.compiled import CompiledPolicy, Explanation
from otel_audit.policy.errors import PolicyError, Problem
from otel_audit.policy.loader import load_model
from otel_audit.policy.merge import ENV_OVERRIDES
from otel_audit.policy.required import MarkIncomplete
from otel_audit.policy.schema_messages import schema

FALLBACK_ID = "otel-audit-fallback"


def load_policy(source: str | None = None, environ: Mapping[str, str] | None = None) -> CompiledPolicy:
    """Load and compile a policy. Raises :class:`PolicyError` (naming file, line, path) if it is broken."""
    return CompiledPolicy(load_model(source, environ))


def fallback_policy() -> CompiledPolicy:
    """The documented safe fallback for a broken policy: audit everything at metadata level (no
    payloads at all) with the redaction module's defaults, and the built-in route classification."""
    model = load_model(None, environ={})
    everything = tuple(rule for rule in model.rules if not rule.id.startswith("builtin.quiet-"))  # not quiet
    return CompiledPolicy(replace(model, id=FALLBACK_ID, version=model.version, redaction={}, rules=everything))


__all__ = [
    "CompiledPolicy",
    "ENV_OVERRIDES",
    "Explanation",
    "FALLBACK_ID",
    "MarkIncomplete",
    "PolicyError",
    "Problem",
    "fallback_policy",
    "load_model",
    "load_policy",
    "schema",
]


def load_or_fallback(source: str | None, fail_mode: str = "open") -> tuple[CompiledPolicy, PolicyError | None]:
    """The runtime's policy: the configured one, or - when it is broken - the safe fallback.

    A broken policy never means "audit nothing": the error goes loudly to stderr (every problem,
    even with OTEL_AUDIT_QUIET) and :func:`fallback_policy` is used. When fail-closed is configured
    (``OTEL_AUDIT_FAIL_MODE=closed``, ``OTEL_AUDIT_POLICY_FAIL_MODE=closed`` or the broken document's
    own ``failure_mode: closed``) the :class:`PolicyError` is raised instead, to stop start-up.
    """
    import sys

    from otel_audit.config import policy_fail_mode_closed

    try:
        return load_policy(source), None
    except PolicyError as exc:
        closed = (
            fail_mode == "closed"
            or exc.failure_mode == "closed"
            or policy_fail_mode_closed()
        )
        consequence = (
            "refusing to start: fail mode is closed"
            if closed
            else f"FALLING BACK to the safe default policy ({FALLBACK_ID}): every event is audited at "
            "metadata level (no payloads) with full redaction"
        )
        print(f"otel-audit: ERROR: the audit policy is invalid; {consequence}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"otel-audit:   {problem}", file=sys.stderr)
        if closed:
            raise
        return fallback_policy(), exc


__all__ += ["load_or_fallback"]
