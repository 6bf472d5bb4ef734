"""The audit trail of one test: a real runtime with an in-memory exporter, and assertions over it.

The runtime is the production one (policy, route classification, redaction, hash chain, durable
spool in a temporary directory); only the exporter is swapped for :class:`CaptureExporter`, so
``records`` are exactly what a collector would have received. Records are plain dicts in the
embedded sink's shape (``event_name``, ``attributes``, ``body``, ``severity_text``, ...).
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from otel_audit.config import raw_setting, set_environment
from otel_audit._logs_compat import LogExporter, LogExportResult
from otel_audit.testing.matching import Criteria, describe_record, nearest_report

#: Attributes every audit record carries, whatever the policy (docs/attributes.md).
BASE_FIELDS = (
    "audit.event_id",
    "audit.category",
    "audit.action",
    "audit.outcome",
    "audit.level",
    "audit.origin",
    "audit.rule",
    "audit.policy.id",
    "audit.policy.version",
    "audit.policy.hash",
)

#: Set for the test's runtime whatever the surrounding environment says: records go to the
#: injected exporter through a spool in the test's directory, and nothing is announced.
_FORCED_ENV = {
    "OTEL_AUDIT_ENABLED": "true",
    "OTEL_AUDIT_EXPORTER": "sink",  # the injected exporter replaces it; keeps delivery local and synchronous
    "OTEL_AUDIT_QUIET": "true",
    "OTEL_AUDIT_SPOOL_ACK": "write",
}
#: Removed: they would reach beyond the test (a global LoggerProvider hook).
_CLEARED_ENV = ("OTEL_AUDIT_REDACT_ALL_LOGS",)
#: A fixed pseudonym key unless the test sets one, so ``[HMAC:…]`` values are stable across runs.
TEST_HMAC_KEY = "otel-audit-testing-only-hmac-key"


class AuditAssertionError(AssertionError):
    """An audit-trail assertion failed; the message shows the nearest records."""


class CaptureExporter(LogExporter):
    """Keeps exported records in memory, as sink-shaped dicts (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []

    def export(self, batch: Sequence[Any]) -> LogExportResult:
        from otel_audit.delivery.sink import record_to_dict

        converted = [record_to_dict(record) for record in batch]
        with self._lock:
            self._records.extend(converted)
        return LogExportResult.SUCCESS

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def policy_source_for(request: Any) -> str | None:
    """The policy for a test: ``audit_policy`` marker, else the ini option, else OTEL_AUDIT_POLICY."""
    marker = request.node.get_closest_marker("audit_policy")
    if marker is not None:
        value = marker.args[0] if marker.args else marker.kwargs.get("source")
        if not isinstance(value, str) or not value.strip():
            raise ValueError("@pytest.mark.audit_policy(...) needs one argument: a policy file, inline YAML or pack:NAME")
        bases = [Path(str(request.path)).parent, Path(str(request.config.rootpath))]
        return _resolve_source(value, bases, "@pytest.mark.audit_policy")
    ini = request.config.getini("audit_policy")
    if ini:
        inipath = request.config.inipath
        bases = [Path(str(inipath)).parent if inipath else Path(str(request.config.rootpath))]
        return _resolve_source(str(ini), bases, "ini option audit_policy")
    return raw_setting("OTEL_AUDIT_POLICY") or None


def _resolve_source(value: str, bases: Iterable[Path], where: str) -> str:
    from otel_audit.policy.source import looks_inline

    if value.startswith("pack:") or looks_inline(value):
        return value
    candidate = Path(value).expanduser()
    tried = [candidate] if candidate.is_absolute() else [base / candidate for base in bases]
    for path in tried:
        if path.is_file():
            return str(path.resolve())
    raise FileNotFoundError(f"{where}: policy file {value!r} not found (looked at {', '.join(map(str, tried))})")


class AuditTrail:
    """One test's runtime and its captured records. Use through the ``audit_trail`` fixture."""

    def __init__(self, policy: str | None = None, workdir: Path | str | None = None,
                 instrument: Sequence[str] = ("auto",)) -> None:
        self.policy_source = policy
        self.workdir = Path(workdir) if workdir is not None else None
        self.instrument_names = list(instrument)
        self.exporter = CaptureExporter()
        self.runtime: Any = None
        self.policy: Any = None
        self._previous_runtime: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._sigterm: Any = None
        self._instrumented: list[Any] = []
        self._started = False

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> "AuditTrail":
        """Validate the policy (a broken one fails the test, no silent fallback), then start."""
        from otel_audit import runtime
        from otel_audit.policy import PolicyError, load_policy

        problems = None
        try:
            load_policy(self.policy_source)
        except PolicyError as exc:
            problems = exc.report()
        if problems is not None:  # outside the except: the report alone, no chained traceback
            import pytest

            pytest.fail(f"audit_trail: the audit policy is invalid:\n{problems}", pytrace=False)
        if self.workdir is None:
            import tempfile

            self.workdir = Path(tempfile.mkdtemp(prefix="otel-audit-"))
        self._set_env()
        if threading.current_thread() is threading.main_thread():
            self._sigterm = signal.getsignal(signal.SIGTERM)
        self._previous_runtime = runtime.swap_runtime(None)
        self._started = True
        try:
            self.runtime = runtime.start(exporter=self.exporter)
            if self.runtime is None:  # pragma: no cover - OTEL_AUDIT_ENABLED is forced on
                raise RuntimeError("otel-audit did not start")
            self.policy = self.runtime.policy
            self._instrument()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop this test's runtime and adapters; put back the previous runtime and environment."""
        if not self._started:
            return
        self._started = False
        from otel_audit import runtime

        for instrumentor in reversed(self._instrumented):
            try:
                instrumentor.uninstrument()
            except Exception:  # noqa: BLE001 - teardown continues; the next test instruments afresh
                pass
        self._instrumented.clear()
        try:
            runtime.reset_for_tests()
        finally:
            runtime.swap_runtime(self._previous_runtime)
            self._previous_runtime = None
            set_environment(self._saved_env)
            self._saved_env.clear()
            if self._sigterm is not None:
                try:
                    signal.signal(signal.SIGTERM, self._sigterm)
                except (ValueError, OSError, TypeError):  # pragma: no cover
                    pass
                self._sigterm = None

    def _set_env(self) -> None:
        assert self.workdir is not None
        wanted: dict[str, str | None] = dict(_FORCED_ENV)
        wanted["OTEL_AUDIT_SPOOL_DIR"] = str(self.workdir / "spool")
        wanted["OTEL_AUDIT_SINK_PATH"] = str(self.workdir / "unused-sink.jsonl")
        wanted["OTEL_AUDIT_POLICY"] = self.policy_source
        if not raw_setting("OTEL_AUDIT_HMAC_KEY"):
            wanted["OTEL_AUDIT_HMAC_KEY"] = TEST_HMAC_KEY
        for name in _CLEARED_ENV:
            wanted[name] = None
        for name, value in set_environment(wanted).items():
            self._saved_env.setdefault(name, value)

    def _instrument(self) -> None:
        """Instrument the selected otel-audit adapters that are not instrumented already."""
        for instrumentor in selected_instrumentors(self.instrument_names):
            if getattr(instrumentor, "is_instrumented_by_opentelemetry", False):
                continue  # the suite (or the launcher) did it: leave it to them
            instrumentor.instrument(skip_dep_check=True)
            self._instrumented.append(instrumentor)

    # -- records ----------------------------------------------------------------------------------

    def flush(self) -> None:
        processor = getattr(self.runtime, "processor", None) if self.runtime is not None else None
        if processor is not None:
            processor.force_flush(5000)

    @property
    def all_records(self) -> list[dict[str, Any]]:
        """Every exported record, lifecycle ones (``audit.audit_system.*``) included, oldest first."""
        self.flush()
        return self.exporter.records()

    @property
    def records(self) -> list[dict[str, Any]]:
        """Exported records without otel-audit's own lifecycle records."""
        return [r for r in self.all_records if not str(r.get("event_name", "")).startswith("audit.audit_system.")]

    @property
    def event_names(self) -> list[str]:
        return [str(r.get("event_name")) for r in self.records]

    def clear(self) -> None:
        """Forget what was captured so far (e.g. after logging in during setup)."""
        self.flush()
        self.exporter.clear()

    def find(self, **criteria: Any) -> list[dict[str, Any]]:
        """Records matching every criterion (see :meth:`assert_audited` for the names)."""
        wanted = Criteria.parse(criteria)
        return [r for r in self.all_records if wanted.matches(r)]

    # -- assertions -------------------------------------------------------------------------------

    def assert_audited(self, count: int | None = None, **criteria: Any) -> dict[str, Any]:
        """Some record (exactly ``count`` records, when given) matches every criterion; returns the first.

        Criteria: ``event`` (event name), ``category``, ``action``, ``outcome``, ``actor``
        (``enduser.id`` or ``user.name``), ``rule``, ``level``, ``method``, ``route``, ``path``,
        ``status``, ``table``, ``operation``, ``target_type``, ``target_id``, ``origin``, and
        ``attributes={name: value}`` for any other attribute. Strings may be globs (``audit.admin.*``);
        a callable is a predicate; ``None`` means "absent".
        """
        __tracebackhide__ = True
        wanted = Criteria.parse(criteria)
        records = self.all_records
        found = [r for r in records if wanted.matches(r)]
        if found and (count is None or len(found) == count):
            return found[0]
        if found:
            listing = "\n".join(f"  - {describe_record(r)}" for r in found[:10])
            raise AuditAssertionError(
                f"expected {count} audit record{'s' if count != 1 else ''} matching {wanted}, found {len(found)}:\n"
                f"{listing}")
        raise AuditAssertionError(f"no audit record matches {wanted}\n{nearest_report(wanted, records)}")

    def assert_not_audited(self, **criteria: Any) -> None:
        """No record matches every criterion (same names as :meth:`assert_audited`)."""
        __tracebackhide__ = True
        wanted = Criteria.parse(criteria)
        found = [r for r in self.all_records if wanted.matches(r)]
        if found:
            listing = "\n".join(f"  - {describe_record(r)}" for r in found[:10])
            more = f"\n  ... and {len(found) - 10} more" if len(found) > 10 else ""
            raise AuditAssertionError(
                f"expected no audit record matching {wanted}, found {len(found)}:\n{listing}{more}")

    def assert_no_secrets(self, *secrets: str, detectors: Iterable[str] | None = None) -> None:
        """No captured byte holds a secret: neither what the detectors find (every ``secret``
        detector and card numbers by default) nor any of the literal ``secrets`` given (the
        password the test typed, the token it sent). The failure names record, field and detector
        but never shows the secret itself."""
        __tracebackhide__ = True
        from otel_audit.redaction.leak_finder import DEFAULT_SCAN, find_secrets

        literals = []
        for secret in secrets:
            if not isinstance(secret, str) or len(secret) < 4:
                raise ValueError("assert_no_secrets: literal secrets must be strings of at least 4 characters "
                                 "(shorter ones match by chance)")
            literals.append(secret)
        names = tuple(DEFAULT_SCAN if detectors is None else detectors)
        problems: list[str] = []
        records = self.all_records
        from otel_audit.redaction.keys import PROTECTED

        for index, record in enumerate(records):
            for where, text in _leaves(record):
                for number, secret in enumerate(literals, 1):
                    if secret in text:
                        problems.append(f"record {index} {record.get('event_name')}: {where} contains literal "
                                        f"secret #{number} {_masked(secret)}")
            # Detectors skip the pipeline's protected bookkeeping (``audit.actor.source`` is
            # ``session:user_id``, a tag is ``pci-dss:10.2.1.1``): it never holds user data.
            attributes = record.get("attributes") or {}
            scanned = {**record, "attributes": {k: v for k, v in attributes.items() if not PROTECTED.matches(k)}}
            for where, text in _leaves(scanned):
                for detector, start, end in find_secrets(text, names):
                    problems.append(f"record {index} {record.get('event_name')}: {where} holds a {detector} "
                                    f"({_masked(text[start:end])} at {start}-{end})")
        if problems:
            shown = "\n".join(f"  - {p}" for p in problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise AuditAssertionError(f"secrets found in {len(records)} captured audit records:\n{shown}{more}")

    def assert_schema(self, *fields: str) -> None:
        """Every record has the base audit fields, a consistent event name, known category,
        outcome and level, the fields the policy's ``required_fields`` demand for its category and
        no ``audit.incomplete`` mark; records other than otel-audit's lifecycle ones also have the
        extra ``fields`` given."""
        __tracebackhide__ = True
        from otel_audit.attributes import LEVELS
        from otel_audit.event import CATEGORIES, OUTCOMES

        required = dict(getattr(self.policy, "required_fields", None) or {})
        common = tuple(required.get("*", ()))
        problems: list[str] = []
        records = self.all_records
        for index, record in enumerate(records):
            attrs = record.get("attributes") or {}
            category = attrs.get("audit.category")
            own = fields if category != "audit_system" else ()  # extra fields are asked of the app's records
            wanted = tuple(dict.fromkeys(BASE_FIELDS + common + tuple(required.get(category, ())) + own))
            missing = [name for name in wanted if attrs.get(name) in (None, "", [], ())]
            issues = []
            if missing:
                issues.append(f"missing {', '.join(missing)}")
            expected_name = f"audit.{category}.{attrs.get('audit.action')}"
            if record.get("event_name") != expected_name:
                issues.append(f"event_name {record.get('event_name')!r} is not {expected_name!r}")
            if category is not None and category not in CATEGORIES:
                issues.append(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
            outcome = attrs.get("audit.outcome")
            if outcome is not None and outcome not in OUTCOMES:
                issues.append(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
            level = attrs.get("audit.level")
            if level is not None and (level not in LEVELS or level == "none"):
                issues.append(f"level {level!r} is not one of metadata, request, full")
            if not record.get("time_unix_nano"):
                issues.append("no timestamp")
            if not record.get("severity_text"):
                issues.append("no severity")
            if attrs.get("audit.incomplete"):
                issues.append(f"marked audit.incomplete (missing {attrs.get('audit.incomplete.fields')})")
            if issues:
                problems.append(f"record {index} {record.get('event_name')}: {'; '.join(issues)}")
        if problems:
            shown = "\n".join(f"  - {p}" for p in problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise AuditAssertionError(f"{len(problems)} of {len(records)} audit records do not meet the schema:\n"
                                      f"{shown}{more}")

    # -- detections (docs/detections.md; needs the detections extra) --------------------------

    def detections(self, rules: Iterable[str | Path] = (), include_pack: bool = True) -> list[Any]:
        """The alerts the rule pack (plus your ``rules`` files) raises on every captured record,
        lifecycle records included: what ``otel-audit detections test`` would print."""
        from otel_audit.detections.evaluate import evaluate
        from otel_audit.detections.pack import load_rules
        from otel_audit.detections.trail import from_dicts

        return evaluate(lambda: load_rules(list(rules), include_pack=include_pack), from_dicts(self.all_records))

    def assert_detects(self, rule: str, rules: Iterable[str | Path] = (), include_pack: bool = True) -> Any:
        """The rule (its name, id, or name without ``otel_audit_``) fired on this test's records;
        returns its first alert."""
        alerts = self.detections(rules, include_pack)
        found = [a for a in alerts if rule in (a.rule, a.rule_id, a.rule.removeprefix("otel_audit_"))]
        if not found:
            fired = ", ".join(sorted({a.rule for a in alerts})) or "none"
            raise AuditAssertionError(f"detection {rule!r} did not fire on {len(self.all_records)} records "
                                      f"(rules that fired: {fired}); events: {', '.join(self.event_names[-12:])}")
        return found[0]

    def assert_no_detections(self, rules: Iterable[str | Path] = (), include_pack: bool = True) -> None:
        """No rule fired: a benign session stays quiet."""
        alerts = self.detections(rules, include_pack)
        if alerts:
            listed = "\n".join(f"  - {a.rule} group={a.group} events={len(a.event_ids)}" for a in alerts)
            raise AuditAssertionError(f"{len(alerts)} detection(s) fired on a session expected to be benign:\n{listed}")

    def __repr__(self) -> str:
        return f"<AuditTrail policy={self.policy_source or 'default'} records={len(self.exporter.records())}>"


# ---------------------------------------------------------------------------------------------
# adapters


#: Adapter (entry point ``otel_audit_<name>``) -> the module whose presence in ``sys.modules``
#: makes ``auto`` pick it: the test process already uses that framework, so nothing new is imported.
FRAMEWORK_MODULES = {
    "flask": "flask",
    "django": "django",
    "fastapi": "starlette",
    "sqlalchemy": "sqlalchemy",
    "sqlite3": "sqlite3",
    "psycopg": "psycopg",
    "logging": "logging",
}


def selected_instrumentors(names: Sequence[str]) -> list[Any]:
    """otel-audit's adapter instrumentors by entry-point name (``flask`` for ``otel_audit_flask``);
    ``auto``: every one whose framework the process has already imported (the app under test's);
    ``none``: no adapter."""
    from importlib.metadata import entry_points

    wanted = [name.strip().lower() for name in names if name.strip()]
    if not wanted or "none" in wanted:
        return []
    available = {}
    for entry in entry_points(group="opentelemetry_instrumentor"):
        if entry.name.startswith("otel_audit_"):
            available[entry.name[len("otel_audit_"):]] = entry
    unknown = [name for name in wanted if name != "auto" and name not in available]
    if unknown:
        raise ValueError(f"audit_instrument: unknown adapter {unknown[0]!r}; expected auto, none or "
                         f"{', '.join(sorted(available))}")
    if "auto" in wanted:
        import sys

        chosen = [name for name in sorted(available) if FRAMEWORK_MODULES.get(name, name) in sys.modules]
    else:
        chosen = wanted
    instrumentors = []
    for name in chosen:
        try:
            cls = available[name].load()
        except ImportError:
            if "auto" in wanted:
                continue  # that framework is not installed
            raise
        instrumentors.append(cls())
    return instrumentors


# ---------------------------------------------------------------------------------------------
# secrets


def _leaves(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(location, text) for every key and scalar in a record."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            location = f"{where}[{key!r}]" if where else str(key)
            yield location + " (key)", str(key)
            yield from _leaves(item, location)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{where}[{index}]")
    elif value is not None and not isinstance(value, bool):
        yield where or "record", value if isinstance(value, str) else json.dumps(value, default=str)


def _masked(secret: str) -> str:
    """Enough to recognise which secret it was, not enough to use it."""
    return f"'{secret[:1]}…' ({len(secret)} chars)"
