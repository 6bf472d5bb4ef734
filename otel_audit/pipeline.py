"""The one pipeline every audit event goes through: decide -> enrich -> redact -> emit.

Like structlog's processor chain, the pipeline is a plain list of small steps. Each step takes the
event and returns it (possibly changed), or ``None`` to stop (not audited). Adapters never emit
directly; they build an :class:`~otel_audit.event.AuditEvent` and call :meth:`Pipeline.process`.

Later capabilities plug in by replacing a step:

* decide - :mod:`otel_audit.policy` (rules, levels, route classification, required fields)
* redact - :mod:`otel_audit.redaction` (key rules, detectors, SQL/URL sanitising)
* emit   - the OTel Logs API; durability and the hash chain live in the log record processor
  behind it (:mod:`otel_audit.delivery`: it stamps the chain's identity on each record and seals
  sequence number, predecessor and MAC in append order)
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from opentelemetry import trace

from otel_audit._logs_compat import SeverityNumber
from otel_audit.attributes import event_attributes, event_message
from otel_audit.event import AuditEvent

Step = Callable[[AuditEvent], "AuditEvent | None"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided for one event."""

    level: str  # none | metadata | request | full
    rule: str  # id of the rule that matched, or "default"
    required: bool = False  # the record must be durable (fail-closed applies)
    extra_attributes: Mapping[str, Any] = field(default_factory=dict)
    granularity: str = "action"  # action: facts fold into their action's record; statement: each its own


class Policy(Protocol):
    """What the pipeline needs from a policy (see :mod:`otel_audit.policy`)."""

    id: str
    version: str
    hash: str

    def decide(self, event: AuditEvent) -> Decision | None: ...


@dataclass(slots=True)
class RecordDraft:
    """The log record being built; the redact step edits ``attributes`` and ``body`` (the durable
    processor adds the chain's attributes when it appends the draft)."""

    event_name: str
    timestamp: int
    severity_number: SeverityNumber
    severity_text: str
    body: Any
    attributes: dict[str, Any]
    trace_id: int = 0
    span_id: int = 0
    trace_flags: int = 0


_SEVERITY_BY_OUTCOME = {
    "success": (SeverityNumber.INFO, "INFO"),
    "unknown": (SeverityNumber.INFO, "INFO"),
    "failure": (SeverityNumber.WARN, "WARN"),
    "denied": (SeverityNumber.WARN, "WARN"),
}


def severity_for(event: AuditEvent) -> tuple[SeverityNumber, str]:
    """Failures that raised (``error.type`` set) are ERROR; other failures and denials WARN."""
    if event.outcome == "failure" and event.error_type:
        return SeverityNumber.ERROR, "ERROR"
    return _SEVERITY_BY_OUTCOME.get(event.outcome, (SeverityNumber.INFO, "INFO"))


# ---------------------------------------------------------------------------------------------
# Steps
#
# Each step declares what it reads of the event and what it writes to it (class attributes
# ``reads`` / ``writes``), in three slots: ``facts`` (the fields adapters fill), ``decision``
# (the policy's :class:`Decision`) and ``record`` (the :class:`RecordDraft`). A step reads only
# what the event brings or an earlier step wrote: :func:`check_steps` says whether a list does.

FACTS, DECISION, RECORD = "facts", "decision", "record"
#: What a step that declares nothing is taken to read and write: everything, so it can only run
#: once a draft exists (``policy/required.py``'s MarkIncomplete, until it declares its own).
UNDECLARED = ((FACTS, DECISION, RECORD), (RECORD,))


def contract(step: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(reads, writes)`` of a step: its declaration, or :data:`UNDECLARED`."""
    reads, writes = getattr(step, "reads", None), getattr(step, "writes", None)
    if reads is None or writes is None:
        return UNDECLARED
    return tuple(reads), tuple(writes)


def check_steps(steps: Sequence[Step]) -> None:
    """``ValueError`` naming the first step that reads what neither the event nor an earlier step provides."""
    available = {FACTS}
    for position, step in enumerate(steps):
        reads, writes = contract(step)
        missing = [slot for slot in reads if slot not in available]
        if missing:
            raise ValueError(f"step {position} ({type(step).__name__}) reads {', '.join(missing)}, "
                             "which no earlier step writes")
        available.update(writes)


class Decide:
    """Ask the policy whether and at what level to audit; ``none`` or no decision stops the event."""

    reads, writes = (FACTS,), (DECISION,)

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def __call__(self, event: AuditEvent) -> AuditEvent | None:
        decision = self.policy.decide(event)
        if decision is None or decision.level == "none":
            return None
        event.decision = decision
        return event


class Enrich:
    """Turn the event into a record draft: attributes for the level, provenance, the local time
    (for the policy's ``local_time`` categories), trace context."""

    reads, writes = (FACTS, DECISION), (RECORD,)

    def __init__(self, policy: Policy) -> None:
        self.provenance = {
            "audit.policy.id": policy.id,
            "audit.policy.version": policy.version,
            "audit.policy.hash": policy.hash,
        }
        self.local_time = getattr(policy, "local_time", None)  # a policy without one stamps no local time

    def __call__(self, event: AuditEvent) -> AuditEvent | None:
        decision: Decision = event.decision
        attrs = event_attributes(event, decision.level)
        attrs["audit.rule"] = decision.rule
        attrs.update(self.provenance)
        local_time = self.local_time
        if local_time is not None and event.category in local_time.categories:
            attrs.update(local_time.attributes(event.time_unix_nano))
        if decision.extra_attributes:
            attrs.update(decision.extra_attributes)
        severity_number, severity_text = severity_for(event)
        # positional (a class call with keywords packs them into a dict: ~0.6 µs a record)
        draft = RecordDraft(event.event_name, event.time_unix_nano, severity_number, severity_text,
                            event_message(event), attrs)
        span_context = _current_span_context()
        if span_context is not None and span_context.is_valid:
            draft.trace_id = span_context.trace_id
            draft.span_id = span_context.span_id
            draft.trace_flags = int(span_context.trace_flags)
        event.record = draft
        return event


def _public_span_context() -> Any:
    return trace.get_current_span().get_span_context()


def _span_lookup() -> Callable[[], Any]:
    """The current span's context, or None when no span is current.

    With the SDK's default runtime context (a context variable), a request without a span (no
    tracing set up, the common case for audit alone) costs one variable read instead of the API's
    four calls and an ABC ``isinstance``; any other runtime context takes the public API."""
    from opentelemetry import context as otel_context
    from opentelemetry.trace.propagation import _SPAN_KEY

    variable = getattr(getattr(otel_context, "_RUNTIME_CONTEXT", None), "_current_context", None)
    if not isinstance(variable, ContextVar):
        return _public_span_context

    def current() -> Any:
        span = variable.get().get(_SPAN_KEY)  # what trace.get_current_span looks up, read once
        return span.get_span_context() if span is not None and isinstance(span, trace.Span) else None

    return current


_current_span_context = _span_lookup()


class Emit:
    """Hand the finished draft to otel-audit's own logger (scope ``otel_audit``): the durable
    processor's :class:`~otel_audit.delivery.DurableLogger` takes the draft as it is (no SDK
    ``LogRecord`` to build)."""

    reads, writes = (RECORD,), ()

    def __init__(self, logger: Any) -> None:
        self.logger = logger
        self.emit_draft = logger.emit_draft

    def __call__(self, event: AuditEvent) -> AuditEvent | None:
        self.emit_draft(event.record)
        return event


class Pipeline:
    """An ordered list of steps; :meth:`process` runs them until one returns ``None``."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)

    def process(self, event: AuditEvent) -> bool:
        """Run the event through every step. True if it was emitted."""
        for step in self.steps:
            result = step(event)
            if result is None:
                return False
            event = result
        return True

    def __repr__(self) -> str:
        return "Pipeline(" + " -> ".join(type(step).__name__ for step in self.steps) + ")"


class Redact:
    """Apply the policy's redaction to the draft before anything leaves the process."""

    reads, writes = (FACTS, DECISION, RECORD), (RECORD,)

    def __init__(self, redactor: Any) -> None:
        self.redactor = redactor
        self.untouched = getattr(redactor, "untouched", None)  # a redactor may not tell

    def __call__(self, event: AuditEvent) -> AuditEvent | None:
        draft: RecordDraft = event.record
        # Category and level select allow-list rules; the body is redacted like any value and
        # the summary (count, field names, key id; never values) rides along on every record.
        decision = event.decision
        untouched = self.untouched
        if untouched is not None and untouched(draft.attributes, draft.body, category=event.category,
                                               level=decision.level if decision is not None else None):
            draft.attributes["audit.redaction.count"] = 0  # the summary of a record nothing was redacted in
            return event
        result = self.redactor.redact(
            draft.attributes,
            draft.body,
            category=event.category,
            level=decision.level if decision is not None else None,
        )
        draft.attributes = result.attributes
        draft.attributes.update(result.summary())
        draft.body = result.body
        return event
