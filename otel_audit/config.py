"""Process configuration from ``OTEL_AUDIT_*`` environment variables.

The variables are declared as data in :data:`ENV_VARS` (name, parser, default, description), the
README table is checked against it by a test, and every parse error names the variable and what
was expected. Values of secret variables never appear in messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from otel_audit.errors import ConfigError


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return lowered

    return parse


def _text(value: str) -> str:
    return value


def _path(value: str) -> Path:
    if not value.strip():
        raise ValueError("expected a file path")
    return Path(value).expanduser()


def _positive_int(value: str) -> int:
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        raise ValueError("expected a whole number") from None
    if number <= 0:
        raise ValueError("expected a number above 0")
    return number


def _count(value: str) -> int:
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        raise ValueError("expected a whole number") from None
    if number < 0:
        raise ValueError("expected 0 or more")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise ValueError("expected a number of seconds such as 60 or 0.5") from None
    if not number >= 0 or number == float("inf"):
        raise ValueError("expected 0 or more seconds")
    return number


def _hmac_key(value: str) -> str:
    if len(value) < 16:
        raise ValueError("expected at least 16 characters")
    return value


_BYTE_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def _byte_size(value: str) -> int:
    text = value.strip().lower().replace("_", "")
    number = text.rstrip("kmgib")
    unit = text[len(number):]
    if unit not in _BYTE_UNITS or not number.isdigit() or int(number) <= 0:
        raise ValueError("expected a size above 0 such as 1048576, 512MiB or 2GB")
    return int(number) * _BYTE_UNITS[unit]


def _all_logs_mode(value: str) -> str:
    """``secrets`` / ``all`` / ``off``; the boolean spellings of the old opt-in mean ``all`` / ``off``."""
    lowered = value.strip().lower()
    if lowered in ("secrets", "all", "off"):
        return lowered
    try:
        return "all" if _bool(lowered) else "off"
    except ValueError:
        raise ValueError("expected one of secrets, all, off (or true/false for all/off)") from None


def _default_spool_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "otel-audit" / "spool"


def _dotted_callable(value: str) -> str:
    module, sep, attr = value.strip().partition(":")
    if not sep:
        module, _, attr = value.strip().rpartition(".")
    if not module or not attr or not all(part.isidentifier() for part in module.split(".") + [attr]):
        raise ValueError("expected a callable's path such as myapp.auth:current_actor")
    return value.strip()


def _names(value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    if not names:
        raise ValueError("expected comma-separated logger names")
    return names


def _default_sink_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "otel-audit" / "audit.jsonl"


@dataclass(frozen=True)
class EnvVar:
    name: str
    attr: str
    parse: Callable[[str], Any]
    default: Any
    description: str
    secret: bool = False


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("OTEL_AUDIT_ENABLED", "enabled", _bool, True, "Turn otel-audit on or off (`true`/`false`)."),
    EnvVar(
        "OTEL_AUDIT_POLICY",
        "policy",
        _text,
        None,
        "The audit policy: a file path, inline YAML/JSON, or `pack:NAME`. Unset: the built-in default policy.",
    ),
    EnvVar(
        "OTEL_AUDIT_EXPORTER",
        "exporter",
        _choice("auto", "otlp", "sink", "console"),
        "auto",
        "Where records go. `auto`: OTLP when `OTEL_LOGS_EXPORTER=otlp` or an OTLP endpoint variable is "
        "set, else the embedded JSON-lines sink.",
    ),
    EnvVar(
        "OTEL_AUDIT_SINK_PATH",
        "sink_path",
        _path,
        None,
        "File of the embedded sink (JSON lines, mode 0600). Default `$XDG_STATE_HOME/otel-audit/audit.jsonl` "
        "(`~/.local/state/otel-audit/audit.jsonl`).",
    ),
    EnvVar(
        "OTEL_AUDIT_FAIL_MODE",
        "fail_mode",
        _choice("open", "closed"),
        "open",
        "`open`: audit failures are contained and counted, the app carries on. `closed`: a required record "
        "that cannot be made durable refuses the request (HTTP 503) and a broken policy stops start-up.",
    ),
    EnvVar(
        "OTEL_AUDIT_ACTOR_RESOLVER",
        "actor_resolver",
        _dotted_callable,
        None,
        "A callable (`pkg.module:function`) asked first for the actor of each request; it gets the "
        "adapter's facts object and returns an `Actor`, a user object/mapping or an id. Imported at start-up: "
        "fail-closed refuses to start if it cannot be, fail-open says so and continues without it.",
    ),
    EnvVar(
        "OTEL_AUDIT_VCS_REVISION",
        "vcs_revision",
        _text,
        None,
        "The deployed code's VCS revision (commit id), recorded in the `start` record as `vcs.ref.head.revision` "
        "when the resource has none (`OTEL_RESOURCE_ATTRIBUTES=vcs.ref.head.revision=...`). A change between "
        "processes is a `configuration.deploy` record.",
    ),
    EnvVar(
        "OTEL_AUDIT_VCS_REPOSITORY",
        "vcs_repository",
        _text,
        None,
        "The deployed code's repository URL, recorded as `vcs.repository.url.full` when the resource has none.",
    ),
    EnvVar(
        "OTEL_AUDIT_LOGGERS",
        "loggers",
        _names,
        ("audit", "security", "django.security"),
        "stdlib loggers whose records the logging bridge turns into audit events (comma-separated).",
    ),
    EnvVar(
        "OTEL_AUDIT_QUIET",
        "quiet",
        _bool,
        False,
        "Suppress the one-line stderr notice naming where records go.",
    ),
    EnvVar(
        "OTEL_AUDIT_HMAC_KEY",
        "hmac_key",
        _hmac_key,
        None,
        "Key for `hmac` redaction pseudonyms (at least 16 characters). Unset: a random per-process key, "
        "announced once on stderr (or masking, if the policy says `redaction.hmac.missing_key: mask`).",
        secret=True,
    ),
    EnvVar(
        "OTEL_AUDIT_HMAC_KEY_ID",
        "hmac_key_id",
        _text,
        None,
        "Id of that key, recorded as `audit.redaction.key_id`. Unset: derived from the key (not reversible).",
    ),
    EnvVar(
        "OTEL_AUDIT_REDACT_ALL_LOGS",
        "redact_all_logs",
        _all_logs_mode,
        "secrets",
        "Redaction of the application's own log records (the global OTel LoggerProvider, before its exporters): "
        "`secrets` (credentials, tokens, keys, card numbers, URL credentials, signed URL parameters; no PII "
        "pseudonyms), `all` (the audit policy's whole redaction) or `off`. `true`/`false` mean `all`/`off`.",
    ),
    EnvVar(
        "OTEL_AUDIT_SPOOL_DIR",
        "spool_dir",
        _path,
        None,
        "Directory of the durable spool (one 0700 subdirectory per process, files 0600). Default "
        "`$XDG_STATE_HOME/otel-audit/spool`. See docs/delivery.md.",
    ),
    EnvVar(
        "OTEL_AUDIT_SPOOL_MAX_BYTES",
        "spool_max_bytes",
        _byte_size,
        1 << 30,
        "Size limit of one process's spool (`1073741824`, `512MiB`, `2GB`); `OTEL_AUDIT_OVERFLOW` says what "
        "happens at the limit. Default 1 GiB.",
    ),
    EnvVar(
        "OTEL_AUDIT_OVERFLOW",
        "overflow",
        _choice("block", "fail_closed", "drop_oldest", "drop_newest"),
        "block",
        "Spool full: `block` (wait up to `OTEL_AUDIT_BLOCK_TIMEOUT_MS`), `fail_closed` (refuse the record), "
        "`drop_oldest` / `drop_newest` (counted in `otel_audit.records.dropped`, never silent).",
    ),
    EnvVar(
        "OTEL_AUDIT_BLOCK_TIMEOUT_MS",
        "block_timeout_ms",
        _positive_int,
        5000,
        "How long `block` waits for spool room before the record counts as not durable.",
    ),
    EnvVar(
        "OTEL_AUDIT_SPOOL_ACK",
        "spool_ack",
        _choice("fsync", "write", "queued"),
        "write",
        "When emitting returns: `write` (appended to the spool file by the calling thread: survives the process "
        "being killed; fsynced in the background within 200 ms), `fsync` (on disk: survives a power cut, costs "
        "one fdatasync per group) or `queued` (in memory: a crash loses the last milliseconds).",
    ),
    EnvVar(
        "OTEL_AUDIT_FLUSH_TIMEOUT_MS",
        "flush_timeout_ms",
        _positive_int,
        5000,
        "At shutdown, how long to keep exporting before leaving the rest in the spool for the next process.",
    ),
    EnvVar(
        "OTEL_AUDIT_EXPORT_DELAY_MS",
        "export_delay_ms",
        _count,
        50,
        "Once woken by a record, and after a batch that was not full, how long the exporter lets the batch build up: fewer, "
        "larger exports under load, at that much delivery latency (records are durable in the spool meanwhile; "
        "a flush or shutdown cuts the wait short). `0` sends as soon as records arrive.",
    ),
    EnvVar(
        "OTEL_AUDIT_CHAIN_KEY",
        "chain_key",
        _hmac_key,
        None,
        "HMAC-SHA256 key of the record hash chain (at least 16 characters). Unset: an unkeyed SHA-256 chain "
        "that detects accidental edits but not deliberate tampering.",
        secret=True,
    ),
    EnvVar(
        "OTEL_AUDIT_CHAIN_KEY_ID",
        "chain_key_id",
        _text,
        None,
        "Id of the chain key, recorded as `audit.chain.key_id` so keys can be rotated. Default `default`.",
    ),
    EnvVar(
        "OTEL_AUDIT_SPOOL_RESERVE",
        "spool_reserve",
        _byte_size,
        256 << 10,
        "Fail-closed only: disk space each process holds in its spool so that every admitted request's "
        "record has room (a request is refused unless it is held). Default 256 KiB. See docs/delivery.md.",
    ),
    EnvVar(
        "OTEL_AUDIT_CHECKPOINT_INTERVAL",
        "checkpoint_interval_s",
        _seconds,
        60.0,
        "Seconds between signed `audit.audit_system.checkpoint` records of a running chain (`0`: none), so "
        "`otel-audit verify` can tell how far a chain reached. See docs/delivery.md.",
    ),
    EnvVar(
        "OTEL_AUDIT_CHECKPOINT_RECORDS",
        "checkpoint_records",
        _count,
        10000,
        "Also write a checkpoint after this many records (`0`: by time only).",
    ),
    EnvVar(
        "OTEL_AUDIT_CHECKPOINT_PATH",
        "checkpoint_path",
        _path,
        None,
        "Also append the chain's start, checkpoint, stop and loss records to this file (JSON lines): a second "
        "destination, so whoever controls the log store cannot cut a chain's tail unseen (`verify --digest`).",
    ),
)


@dataclass(frozen=True)
class AuditConfig:
    enabled: bool = True
    policy: str | None = None
    exporter: str = "auto"
    sink_path: Path = field(default_factory=_default_sink_path)
    fail_mode: str = "open"
    quiet: bool = False
    actor_resolver: str | None = None
    vcs_revision: str | None = None
    vcs_repository: str | None = None
    loggers: tuple[str, ...] = ("audit", "security", "django.security")
    hmac_key: str | None = field(default=None, repr=False)
    hmac_key_id: str | None = None
    redact_all_logs: str = "secrets"
    spool_dir: Path = field(default_factory=_default_spool_dir)
    spool_max_bytes: int = 1 << 30
    overflow: str = "block"
    block_timeout_ms: int = 5000
    spool_ack: str = "write"
    flush_timeout_ms: int = 5000
    export_delay_ms: int = 50
    chain_key: str | None = field(default=None, repr=False)
    chain_key_id: str | None = None
    spool_reserve: int = 256 << 10
    checkpoint_interval_s: float = 60.0
    checkpoint_records: int = 10000
    checkpoint_path: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "AuditConfig":
        """Parse every declared variable; the first bad one raises :class:`ConfigError`."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var in ENV_VARS:
            raw = env.get(var.name)
            if raw is None or raw == "":
                if var.default is not None:
                    values[var.attr] = var.default
                continue
            try:
                values[var.attr] = var.parse(raw)
            except ValueError as exc:
                shown = "<hidden>" if var.secret else repr(raw)
                raise ConfigError(f"{var.name}: {shown} is invalid: {exc}") from None
        return cls(**values)

    def wants_otlp(self, environ: Mapping[str, str] | None = None) -> bool:
        """Whether records go out over OTLP (explicitly, or inferred from the standard OTel variables)."""
        if self.exporter != "auto":
            return self.exporter == "otlp"
        env = os.environ if environ is None else environ
        logs_exporter = env.get("OTEL_LOGS_EXPORTER", "")
        if "otlp" in [part.strip().lower() for part in logs_exporter.split(",")]:
            return True
        return bool(env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def env_table_markdown() -> str:
    """The README's configuration table, generated from :data:`ENV_VARS` (a test keeps them equal)."""

    def shown(var: EnvVar) -> str:
        if var.default is None:
            return "unset"
        if isinstance(var.default, bool):
            return f"`{str(var.default).lower()}`"
        if isinstance(var.default, tuple):
            return f"`{','.join(var.default)}`"
        return f"`{var.default}`"

    from otel_audit.policy.merge import ENV_OVERRIDES  # the policy's knobs, declared beside the policy

    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{var.name}` | {shown(var)} | {var.description} |" for var in ENV_VARS]
    lines += [f"| `{override.name}` | from the policy | {override.description} |" for override in ENV_OVERRIDES]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m otel_audit.config > table.md
    print(env_table_markdown())


# --- OTLP transport (otel_audit/transport.py resolves it; the variables are read here) -------------------


def _initial_environ() -> Mapping[str, str] | None:
    """The environment this process was started with (Linux keeps it in ``/proc/self/environ``), or
    ``None`` where it cannot be read. It tells a value the user exported from one a distro set in-process."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def otlp_transport(launcher: bool = False) -> Any:
    """The OTLP protocol and endpoint this process (or, ``launcher``, one started by
    ``opentelemetry-instrument`` now) resolves from the standard variables."""
    from otel_audit.transport import OtlpTransport

    return OtlpTransport.resolve(os.environ, _initial_environ(), launcher=launcher)


# --- read by instrumentation/ -----------------------------------------------------------------------------


def setting(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """One ``OTEL_AUDIT_*`` variable, parsed as its :class:`EnvVar` says: its default when unset or
    invalid (start-up checks the whole configuration and says what is wrong). For the places that need
    one value before or without a runtime (the logging bridge's logger names, the actor resolver)."""
    env = os.environ if environ is None else environ
    var = next(v for v in ENV_VARS if v.name == name)
    raw = env.get(name)
    if raw is None or raw == "":
        return var.default
    try:
        return var.parse(raw)
    except ValueError:
        return var.default


def raw_setting(name: str) -> str:
    """A variable exactly as set (``""`` when unset), for messages that say what is wrong with it."""
    return os.environ.get(name, "")


# --- written by the test harness, the demo and route discovery: the one place the environment changes -----


def set_environment(changes: Mapping[str, str | None]) -> dict[str, str | None]:
    """Set (a str) or unset (None) each variable; returns what they were, for :func:`set_environment`
    to put back."""
    previous: dict[str, str | None] = {}
    for name, value in changes.items():
        previous[name] = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return previous


def set_environment_default(name: str, value: str) -> str:
    """``os.environ.setdefault``: a framework reads ``name`` itself (Django's settings module)."""
    return os.environ.setdefault(name, value)


def environment_without(prefix: str) -> dict[str, str]:
    """A copy of the environment without the variables starting with ``prefix``, for a child process."""
    return {name: value for name, value in os.environ.items() if not name.startswith(prefix)}


# --- read by policy/ and redaction/ ---------------------------------------------------------------------
# The variables those packages read, read here: policy/ and redaction/ never touch ``os.environ``.

#: ``false`` scans every text in Python even when the native scan loop is built (for comparisons).
NATIVE_SCAN_ENV = "OTEL_AUDIT_NATIVE_SCAN"
HMAC_KEY_ENV = "OTEL_AUDIT_HMAC_KEY"
HMAC_KEY_ID_ENV = "OTEL_AUDIT_HMAC_KEY_ID"
POLICY_FAIL_MODE_ENV = "OTEL_AUDIT_POLICY_FAIL_MODE"


def process_environ() -> Mapping[str, str]:
    """The process environment, for readers that take an ``environ`` mapping and default to the
    process's own (the policy's ``OTEL_AUDIT_POLICY_*`` overrides)."""
    return os.environ


def native_scan_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``OTEL_AUDIT_NATIVE_SCAN`` leaves the native scan loop on (anything but false/0/no/off)."""
    env = os.environ if environ is None else environ
    return env.get(NATIVE_SCAN_ENV, "").strip().lower() not in ("false", "0", "no", "off")


def hmac_key_setting(environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """``OTEL_AUDIT_HMAC_KEY`` and ``OTEL_AUDIT_HMAC_KEY_ID`` (unset or empty: None). A key shorter
    than 16 characters is a :class:`ConfigError` that hides the value."""
    env = os.environ if environ is None else environ
    key = env.get(HMAC_KEY_ENV) or None
    if key is not None and len(key) < 16:
        raise ConfigError(f"{HMAC_KEY_ENV}: <hidden> is invalid: expected at least 16 characters")
    return key, env.get(HMAC_KEY_ID_ENV) or None


def usable_hmac_key(environ: Mapping[str, str] | None = None) -> str | None:
    """``OTEL_AUDIT_HMAC_KEY`` when it is long enough to be a key (16 characters), else None."""
    env = os.environ if environ is None else environ
    key = env.get(HMAC_KEY_ENV)
    return key if key and len(key) >= 16 else None


def policy_fail_mode_closed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``OTEL_AUDIT_POLICY_FAIL_MODE`` says ``closed``."""
    env = os.environ if environ is None else environ
    return env.get(POLICY_FAIL_MODE_ENV, "").strip().lower() == "closed"


# --- read by delivery/ and runtime ------------------------------------------------------------------
# Environment reads of the processor's wiring and the runtime that are not an ``AuditConfig`` field:
# raw looks at a variable, where parsing the whole configuration would be wrong (it may be what failed).


def is_set(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``name`` is set to something other than blanks: an explicit choice, not the default."""
    env = os.environ if environ is None else environ
    return bool((env.get(name) or "").strip())


def fail_closed_requested(environ: Mapping[str, str] | None = None) -> bool:
    """``OTEL_AUDIT_FAIL_MODE=closed`` as written, without parsing the rest: when start-up itself
    failed (a bad variable, a broken policy), the before-view admission still refuses under fail-closed."""
    env = os.environ if environ is None else environ
    return (env.get("OTEL_AUDIT_FAIL_MODE") or "").strip().lower() == "closed"


def otlp_endpoint_as_set(environ: Mapping[str, str] | None = None) -> str:
    """``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``, else ``OTEL_EXPORTER_OTLP_ENDPOINT``, else ``""``, as written
    (no ``/v1/logs`` appended, unlike :class:`OtlpTransport`): the spool's destination key, so a dead
    process's records are sent where that process sent them (``delivery/configure.py``)."""
    env = os.environ if environ is None else environ
    return env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or ""


def chain_key_as_set(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """``(key id, secret)`` from ``OTEL_AUDIT_CHAIN_KEY`` (and ``_KEY_ID``, default ``default``), as
    written, for ``otel-audit verify`` (which checks a trail, not this process's configuration); None unset."""
    env = os.environ if environ is None else environ
    secret = env.get("OTEL_AUDIT_CHAIN_KEY")
    if not secret:
        return None
    return env.get("OTEL_AUDIT_CHAIN_KEY_ID") or "default", secret
