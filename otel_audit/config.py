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


def _hmac_key(value: str) -> str:
    if len(value) < 16:
        raise ValueError("expected at least 16 characters")
    return value


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
        _bool,
        False,
        "Also redact every application log record of the global OTel LoggerProvider (runs before its exporters).",
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
    hmac_key: str | None = field(default=None, repr=False)
    hmac_key_id: str | None = None
    redact_all_logs: bool = False
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
