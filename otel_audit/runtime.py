"""Process-wide start-up: configuration, policy, the audit logger provider and the pipeline.

otel-audit owns a LoggerProvider for its records (scope ``otel_audit``) instead of borrowing the
global one, so audit records never fall into a no-op provider and durability stays under our
control. Exporter choice: OTLP when asked for (``OTEL_LOGS_EXPORTER=otlp`` or an OTLP endpoint
variable), otherwise the embedded JSON-lines sink, announced once on stderr.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import signal
import sys
import threading
import time
from typing import Any

from opentelemetry.sdk.resources import Resource

from otel_audit import __version__
from otel_audit._logs_compat import LoggerProvider
from otel_audit.config import AuditConfig, fail_closed_requested, is_set
from otel_audit.errors import AuditUnavailable, ConfigError, containment
from otel_audit.attributes import event_message
from otel_audit.event import Actor, AuditEvent, DbInfo, HttpInfo
from otel_audit.pipeline import Decide, Emit, Enrich, Pipeline, RecordDraft, Redact, Step, severity_for

SCOPE_NAME = "otel_audit"


def _make_exporter(config: AuditConfig) -> tuple[Any, str]:
    """(exporter, human description of where records go)."""
    if config.wants_otlp():
        from otel_audit.config import otlp_transport

        transport = otlp_transport()
        transport.check()
        if transport.protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        else:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        return OTLPLogExporter(), transport.describe()
    if config.exporter == "console":
        from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

        return ConsoleLogRecordExporter(), "the console"
    from otel_audit.delivery.sink import JsonLinesExporter

    return JsonLinesExporter(config.sink_path), f"the embedded sink {config.sink_path}"


def _check_actor_resolver(config: AuditConfig) -> AuditConfig:
    """``OTEL_AUDIT_ACTOR_RESOLVER`` is imported now, not at the first request: under fail-closed a
    resolver that cannot be loaded refuses start-up (``ConfigError``, naming the variable); under
    fail-open it is said once on stderr and auditing continues without it."""
    dotted = (config.actor_resolver or "").strip()
    if not dotted:
        return config
    from otel_audit.actors import _load_resolver

    try:
        loaded = _load_resolver(dotted)
        problem = None if callable(loaded) else "it is not callable"
    except Exception as exc:  # noqa: BLE001 - import errors, a missing attribute, the module's own errors
        problem = f"cannot import it ({type(exc).__name__})"  # type only: a message may quote app data
    if problem is None:
        return config
    message = f"OTEL_AUDIT_ACTOR_RESOLVER: {dotted!r} is invalid: expected an importable 'package.module:function'; {problem}"
    if config.fail_mode == "closed":
        raise ConfigError(message)
    print(f"otel-audit: ERROR: {message}; continuing without it (fail mode open)", file=sys.stderr)
    return dataclasses.replace(config, actor_resolver=None)


def default_steps(policy: Any, redactor: Any, logger: Any) -> list[Step]:
    """The pipeline's default steps, in order, built here and nowhere else (like structlog's default
    processors): decide, enrich, mark incomplete (``policy/required.py``), redact, emit.

    ``policy`` decides and names the rule set, ``redactor`` is the policy's redaction, ``logger``
    the durable processor's :class:`~otel_audit.delivery.DurableLogger`. What each step reads and
    writes is declared on it (:func:`otel_audit.pipeline.check_steps`)."""
    from otel_audit.policy import MarkIncomplete  # the policy imports the pipeline (Decision)

    return [Decide(policy), Enrich(policy), MarkIncomplete(policy), Redact(redactor), Emit(logger)]


class AuditRuntime:
    """Everything one process needs to audit: config, policy, provider, pipeline."""

    def __init__(self, config: AuditConfig, policy: Any, provider: Any, pipeline: Pipeline, destination: str):
        self.config = config
        self.policy = policy
        self.provider = provider
        self.pipeline = pipeline
        self.destination = destination
        self.policy_error: Any = None  # the PolicyError when the fallback policy is in force
        self.processor: Any = None  # the durable processor (otel_audit.delivery)
        self._stopped = False

    @classmethod
    def from_env(cls, exporter: Any = None) -> "AuditRuntime":
        """Build from ``OTEL_AUDIT_*``. ``exporter`` (a LogExporter) replaces the configured
        destination: :mod:`otel_audit.testing` passes an in-memory one, so a test sees exactly the
        records that would be exported (after policy, redaction, chain and the durable spool)."""
        config = AuditConfig.from_env()
        from otel_audit.policy import load_or_fallback
        from otel_audit.redaction import Redactor

        policy, policy_error = load_or_fallback(config.policy, config.fail_mode)
        if getattr(policy, "failure_mode", "open") == "closed" and config.fail_mode != "closed":
            config = dataclasses.replace(config, fail_mode="closed")
        config = _check_actor_resolver(config)
        if exporter is not None:
            _exporter, destination = exporter, f"the injected exporter {type(exporter).__name__}"
        else:
            _exporter, destination = _make_exporter(config)
        provider = LoggerProvider(resource=Resource.create())
        # Every record (sink and console included) goes through the durable spool; see docs/delivery.md.
        from otel_audit.delivery import make_durable_processor

        factory = (lambda: exporter) if exporter is not None else (lambda: _make_exporter(config)[0])
        processor = make_durable_processor(config, factory, provider.resource,
                                           SCOPE_NAME, __version__, first_exporter=_exporter)
        provider.add_log_record_processor(processor)
        logger = processor.logger(SCOPE_NAME, __version__)
        redactor = Redactor.from_config(getattr(policy, "redaction", None))
        pipeline = Pipeline(default_steps(policy, redactor, logger))
        runtime = cls(config, policy, provider, pipeline, destination)
        runtime.processor = processor
        processor.on_interrupted = runtime._record_interrupted
        processor.on_losses = runtime.declare_losses
        processor.on_checkpoint = runtime.checkpoint
        runtime.policy_error = policy_error
        return runtime

    def record(self, event: AuditEvent) -> bool:
        """Run an event through the pipeline; contain any failure unless fail-closed requires otherwise."""
        try:
            return self.pipeline.process(event)
        except AuditUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - the host app must not break because auditing did
            containment.record("pipeline", exc)
            if self.config.fail_mode == "closed" and event.decision is not None and event.decision.required:
                raise AuditUnavailable("audit record could not be written") from None
            return False

    def note_intent(self, event_id: str, attributes: dict[str, Any]) -> None:
        """Spool the evidence of a data change before the request's one record is written.

        ``attributes`` (plain OTel values: actor, route, table, operation, ...) are redacted first,
        like a record's. The final record with the same ``audit.event_id`` supersedes the intent,
        :meth:`resolve_intent` drops it; if the process dies first, whoever adopts its spool
        reports it as an interrupted record (docs/delivery.md). Never raises, except
        :class:`AuditUnavailable` under fail-closed when it could not be made durable."""
        try:
            processor = self.processor
            if processor is None:
                return
            attrs = dict(attributes)
            result = self._redactor().redact(attrs, category=attrs.get("audit.category"), level="metadata")
            attrs = {**result.attributes, **result.summary()}
            processor.note_intent(event_id, time.time_ns(), attrs)
        except Exception as exc:  # noqa: BLE001 - the host app must not break because auditing did
            containment.record("intent", exc)
            if self.config.fail_mode == "closed":  # the change must not happen unaudited
                raise AuditUnavailable("audit intent could not be written") from None

    def resolve_intent(self, event_id: str) -> None:
        """The request ended without a record (policy level none / filtered): drop its intent."""
        try:
            if self.processor is not None:
                self.processor.resolve_intent(event_id)
        except Exception as exc:  # noqa: BLE001 - the request is over; an open intent is only reported later
            containment.record("intent resolve", exc)

    def _redactor(self) -> Any:
        return next(step.redactor for step in self.pipeline.steps if isinstance(step, Redact))

    def _record_interrupted(self, intent: Any, dead: dict[str, Any]) -> None:
        """Adoption hook: a dead process's unresolved intent becomes its own record.

        Its attributes were redacted when the intent was written, so only the emit step runs
        (redacting twice would pseudonymise pseudonyms; the processor stamps and seals the chain). Raises when the record is not durable,
        so the processor keeps the dead spool and tries again.
        """
        attrs = dict(intent.attributes)
        attrs.update({
            "audit.event_id": intent.event_id,
            "audit.outcome": "unknown",
            "audit.outcome.reason": "interrupted",
            "audit.interrupted.pid": intent.pid if intent.pid is not None else dead.get("pid"),
        })
        attrs.setdefault("audit.level", "metadata")
        if dead.get("chain_id"):
            attrs["audit.interrupted.chain_id"] = dead["chain_id"]
        http = HttpInfo(method=attrs.get("http.request.method"), route=attrs.get("http.route"),
                        path=attrs.get("url.path"))
        event = AuditEvent(
            category=str(attrs.get("audit.category") or "data_modification"),
            action=str(attrs.get("audit.action") or "interrupted"),
            outcome="unknown",
            outcome_reason="interrupted",
            actor=Actor(id=attrs.get("enduser.id"), name=attrs.get("user.name")),
            http=http if http.method else None,
            db=DbInfo(collection=attrs.get("db.collection.name")),
            origin=str(attrs.get("audit.origin") or "otel_audit"),
            event_id=intent.event_id,
            time_unix_nano=intent.time_unix_nano,
        )
        severity_number, severity_text = severity_for(event)
        event.record = RecordDraft(event_name=event.event_name, timestamp=event.time_unix_nano,
                                   severity_number=severity_number, severity_text=severity_text,
                                   body=event_message(event), attributes=attrs)
        for step in self.pipeline.steps:
            if isinstance(step, Emit):
                step(event)

    def admit(self) -> None:
        """Before-view stage: under fail-closed, refuse the request unless its record would be durable
        (the spool's state now, and disk space reserved for the record: docs/delivery.md)."""
        if self.config.fail_mode != "closed" or self.processor is None:
            return
        if not self.processor.admit():
            self.processor.stats.refused += 1
            raise AuditUnavailable("audit spool cannot accept records")

    def declare_losses(self, summary: dict[str, Any]) -> bool:
        """Write ``audit.audit_system.records_lost``: the chain gap left by records that could not be
        made durable (called by the processor once the spool accepts again; docs/delivery.md).
        False when the declaration itself could not be written (the processor keeps it pending)."""
        reasons = [f"{reason}={count}" for reason, count in sorted(summary["reasons"].items())]
        attributes = {"audit.lost.count": summary["count"], "audit.lost.reasons": reasons,
                      "audit.lost.first_unix_nano": summary["first_unix_nano"],
                      "audit.lost.last_unix_nano": summary["last_unix_nano"], "audit.lost.seqs": summary["seqs"]}
        if summary.get("chain_id"):  # a dead process's losses, declared by the process that adopted its spool
            attributes["audit.lost.chain_id"] = summary["chain_id"]
        event = self._lifecycle_event(
            "records_lost",
            f"{summary['count']} audit record(s) could not be made durable ({', '.join(reasons)})", **attributes)
        try:
            self.pipeline.process(event)  # a policy that drops audit_system records drops this too
        except Exception as exc:  # noqa: BLE001 - AuditUnavailable included: this is no request's record
            containment.record("loss record", exc)
            return False
        return True

    def checkpoint(self) -> None:
        """Write ``audit.audit_system.checkpoint``: a signed record whose own chain position and
        predecessor MAC prove how far the chain had reached, and when (docs/delivery.md)."""
        self.lifecycle("checkpoint", **{"audit.checkpoint.interval_s": self.config.checkpoint_interval_s,
                                        "audit.checkpoint.records": self.config.checkpoint_records})

    def lifecycle(self, action: str, reason: str | None = None, **attributes: Any) -> None:
        try:
            self._lifecycle(action, reason, **attributes)
        except AuditUnavailable as exc:  # counted as dropped; requests are refused before their view
            containment.record(f"lifecycle {action}", exc)

    def _lifecycle(self, action: str, reason: str | None = None, **attributes: Any) -> None:
        self.record(self._lifecycle_event(action, reason, **attributes))

    def _lifecycle_event(self, action: str, reason: str | None = None, **attributes: Any) -> AuditEvent:
        return AuditEvent(
            category="audit_system",
            action=action,
            outcome="success" if action not in ("policy_invalid", "audit_failure", "records_lost") else "failure",
            outcome_reason=reason,
            actor=Actor(id=f"pid:{os.getpid()}", type="system"),
            attributes={"audit.policy.source": self._policy_source(), **attributes},
            origin="otel_audit",
        )

    def config_change(self, action: str, changed: list[str], previous: dict[str, Any], facts: dict[str, str]) -> None:
        """A ``configuration.deploy`` / ``configuration.policy_change`` record: each changed fact
        as ``audit.previous.<fact>`` (from) and ``<fact>`` (to), named in ``audit.changes.fields``."""
        before = previous.get("facts", {})
        attributes: dict[str, Any] = {key: facts[key] for key in changed if key in facts}
        attributes.update({f"audit.previous.{key}": before[key] for key in changed if key in before})
        if previous.get("pid") is not None:
            attributes["audit.previous.process.pid"] = previous["pid"]
        if previous.get("time_unix_nano") is not None:
            attributes["audit.previous.start_time_unix_nano"] = previous["time_unix_nano"]
        try:
            self.record(
                AuditEvent(
                    category="configuration",
                    action=action,
                    outcome="success",
                    actor=Actor(id=f"pid:{os.getpid()}", type="system"),
                    changed_fields=tuple(changed),
                    attributes={"audit.policy.source": self._policy_source(), **attributes},
                    origin="otel_audit",
                )
            )
        except AuditUnavailable as exc:
            containment.record(f"lifecycle {action}", exc)

    def _policy_source(self) -> str:
        """Where the policy came from, for lifecycle records: a path or pack name, never inline text."""
        source = self.config.policy
        if not source:
            return "default"
        if source.startswith("pack:") or ("\n" not in source and os.path.exists(source)):
            return source
        return "inline"

    def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self.lifecycle("stop")
        finally:
            self.provider.shutdown()


_runtime: AuditRuntime | None = None
_lock = threading.RLock()


def _warn_transport_mismatch(config: AuditConfig, injected: bool) -> None:
    """Once per process, quiet or not: gRPC by a distro's default to an OTLP/HTTP endpoint sends nothing."""
    if injected or not config.wants_otlp():
        return
    from otel_audit.config import otlp_transport

    warning = otlp_transport().mismatch_warning()
    if warning:
        print(f"otel-audit: WARNING: {warning}", file=sys.stderr)


def start(exporter: Any = None) -> AuditRuntime | None:
    """Start auditing for this process (idempotent). Returns None when disabled.

    ``exporter``: send records to this LogExporter instead of the configured destination (used by
    the pytest plugin, :mod:`otel_audit.testing`; see :meth:`AuditRuntime.from_env`)."""
    global _runtime
    with _lock:
        if _runtime is not None:
            return _runtime
        config = AuditConfig.from_env()
        if not config.enabled:
            return None
        runtime = AuditRuntime.from_env(exporter=exporter)
        _runtime = runtime
        if not config.quiet:
            print(f"otel-audit: auditing on; records go to {runtime.destination}", file=sys.stderr)
        _warn_transport_mismatch(config, injected=exporter is not None)
        facts = deploy_facts(runtime)
        runtime.lifecycle("start", **facts)
        _record_changes_since_last_start(runtime, facts)
        if runtime.policy_error is not None:
            problems = [str(problem) for problem in runtime.policy_error.problems]
            runtime.lifecycle("policy_invalid", problems[0], **{"audit.policy.errors": problems[:20]})
        runtime.lifecycle(
            "policy_loaded",
            **{"audit.policy.id": runtime.policy.id, "audit.policy.version": runtime.policy.version},
        )
        atexit.register(runtime.shutdown)
        _stop_on_sigterm(runtime)
        _redact_all_logs(runtime, injected=exporter is not None)
        return runtime


#: What the ``start`` record says about the deployed code and its environment, from the resource
#: (OTel semantic conventions) first, then from ``OTEL_AUDIT_VCS_*``.
DEPLOY_FACTS = ("service.version", "vcs.ref.head.revision", "vcs.repository.url.full", "deployment.environment.name")
POLICY_FACTS = ("audit.policy.id", "audit.policy.version", "audit.policy.hash")
#: In the destination's spool root: what the last process started with (``_record_changes_since_last_start``).
DEPLOY_STATE_FILE = "last-start.json"


def deploy_facts(runtime: AuditRuntime) -> dict[str, str]:
    """The deployed code (service version, VCS revision and repository), its environment and the
    policy in force (id, version, hash): what the ``start`` record carries (PCI DSS 10.2.1.6)."""
    resource = dict(getattr(runtime.provider.resource, "attributes", {}) or {})
    config = runtime.config
    values = {
        "service.version": resource.get("service.version"),
        "vcs.ref.head.revision": resource.get("vcs.ref.head.revision") or config.vcs_revision,
        "vcs.repository.url.full": resource.get("vcs.repository.url.full") or config.vcs_repository,
        "deployment.environment.name": resource.get("deployment.environment.name") or resource.get("deployment.environment"),
        "audit.policy.id": getattr(runtime.policy, "id", None),
        "audit.policy.version": getattr(runtime.policy, "version", None),
        "audit.policy.hash": getattr(runtime.policy, "hash", None),
    }
    return {key: str(value) for key, value in values.items() if value not in (None, "")}


def _record_changes_since_last_start(runtime: AuditRuntime, facts: dict[str, str]) -> None:
    """Compare with what the previous process on this spool directory started with; a difference
    is a ``configuration.deploy`` (code, version, environment) and/or a
    ``configuration.policy_change`` record saying from what to what. The state file is read,
    compared and rewritten under an exclusive lock, so workers starting together say it once."""
    # The destination's spool root (next to its ``ended`` file): the previous start compared with
    # is the one whose records went to the same trail.
    options = getattr(runtime.processor, "options", None)
    try:
        previous = _swap_last_start(getattr(options, "spool_dir", None) or runtime.config.spool_dir, facts)
    except Exception as exc:  # noqa: BLE001 - a state file problem must not stop auditing
        containment.record("lifecycle deploy state", exc)
        return
    if previous is None:
        return  # the first process on this spool directory: nothing to compare with
    for action, keys in (("deploy", DEPLOY_FACTS), ("policy_change", POLICY_FACTS)):
        changed = [key for key in keys if previous.get("facts", {}).get(key) != facts.get(key)]
        if changed:
            runtime.config_change(action, changed, previous, facts)


def _swap_last_start(spool_dir: Any, facts: dict[str, str]) -> dict[str, Any] | None:
    """Write this start's facts to the state file; return the previous contents (None: none)."""
    import fcntl
    import json
    from pathlib import Path

    root = Path(spool_dir)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = root / DEPLOY_STATE_FILE
    lock_fd = os.open(root / (DEPLOY_STATE_FILE + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        previous = None
        try:
            previous = json.loads(path.read_text())
        except FileNotFoundError:
            pass
        except ValueError:
            previous = {"facts": {}, "unreadable": True}  # a damaged file: everything counts as changed
        state = {"facts": facts, "pid": os.getpid(), "time_unix_nano": time.time_ns()}
        temporary = root / f".{DEPLOY_STATE_FILE}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle, sort_keys=True)
        os.replace(temporary, path)
        return previous if isinstance(previous, dict) else None
    finally:
        os.close(lock_fd)


def _redact_all_logs(runtime: AuditRuntime, injected: bool = False) -> None:
    """OTEL_AUDIT_REDACT_ALL_LOGS: a redactor runs first for every application log record of the
    global provider: the secret-class one by default (``secrets``), the audit policy's (``all``).
    ``injected`` (the pytest plugin's exporter): the global provider is the test process's, left
    alone unless the variable asks explicitly."""
    mode = runtime.config.redact_all_logs
    if mode == "off" or (injected and not is_set("OTEL_AUDIT_REDACT_ALL_LOGS")):
        return
    try:
        from otel_audit.redaction.logs import install_all_logs_redaction, secrets_redactor

        if mode == "all":
            redactor = runtime._redactor()
        else:
            redactor = secrets_redactor()
        install_all_logs_redaction(redactor)
    except Exception as exc:  # noqa: BLE001 - application logging must keep working
        containment.record("log redaction install", exc)


def _stop_on_sigterm(runtime: AuditRuntime) -> None:
    """Python's default SIGTERM kills the process without atexit, losing the ``stop`` record and
    any buffered records. Only when the app has no handler of its own, flush and then die by the
    same signal, so exit status and supervisors see no difference."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def on_sigterm(signum: int, frame: Any) -> None:
            try:
                runtime.shutdown()
            finally:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGTERM, on_sigterm)
    except (ValueError, OSError):  # not in the main interpreter / unsupported platform
        pass


def get_runtime() -> AuditRuntime | None:
    """The running runtime, starting it on first use."""
    return _runtime if _runtime is not None else start()


def record_event(event: AuditEvent) -> bool:
    """Entry point for adapters: never raises except :class:`AuditUnavailable` (fail-closed)."""
    try:
        runtime = get_runtime()
    except Exception as exc:  # noqa: BLE001 - a lazy start-up failure must not break the request
        containment.record("startup", exc)
        return False
    if runtime is None:
        return False
    return runtime.record(event)


def admit_request() -> None:
    """Before-view stage for adapters: raises :class:`AuditUnavailable` (fail-closed) when the
    request could not be audited; otherwise returns. Fail-open never raises."""
    try:
        runtime = get_runtime()
    except Exception as exc:  # noqa: BLE001
        containment.record("startup", exc)
        if fail_closed_requested():
            raise AuditUnavailable("audit could not start") from None
        return
    if runtime is not None:
        runtime.admit()


def swap_runtime(new: AuditRuntime | None) -> AuditRuntime | None:
    """Install ``new`` as this process's runtime without starting or stopping anything; returns the
    one it replaced. The pytest plugin runs each test on its own runtime and puts the previous back."""
    global _runtime
    with _lock:
        previous, _runtime = _runtime, new
        return previous


def flush(timeout_millis: int = 10000) -> bool:
    """Wait until every record emitted so far has reached the exporter (sink file, OTLP endpoint).

    Emitting returns once a record is durable in the spool; the exporter thread sends it a few
    milliseconds later. Tests and CLIs that read the destination in-process call this first.
    """
    runtime = _runtime
    if runtime is None:
        return True
    return bool(runtime.provider.force_flush(timeout_millis))


def stop() -> None:
    """Stop auditing in this process: the ``stop`` record, flush, shut the provider down, and forget
    the runtime, so the next use starts it again from the environment (an instrumentor's
    ``uninstrument``; the tests between cases)."""
    global _runtime
    with _lock:
        if _runtime is not None:
            atexit.unregister(_runtime.shutdown)
            _runtime.shutdown()
        _runtime = None


def reset_for_tests() -> None:
    """The tests' name for :func:`stop`: shut down and forget the runtime so the next use reads the
    environment again."""
    stop()
