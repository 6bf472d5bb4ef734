"""How OTLP records leave: the OTel variables' precedence, and the distro's gRPC default caught when
the endpoint is plainly OTLP/HTTP. Pure: :func:`otel_audit.config.otlp_transport` passes the
environment in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from otel_audit.errors import ConfigError

#: Where ``opentelemetry-instrument`` users most often get ``grpc`` without asking for it.
DISTRO_DEFAULT = "opentelemetry-distro's default"
_HTTP_PROTOCOLS = ("http/protobuf", "http")


def _distro_installed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("opentelemetry.distro") is not None
    except (ImportError, ValueError):
        return False


def shown_endpoint(url: str) -> str:
    """An endpoint as it may be printed: user-info and query string cut (either may carry a token)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<unparseable endpoint>"


def _looks_http(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url if "//" in url else f"//{url}")
        return parts.path.rstrip("/").endswith("/v1/logs") or parts.port == 4318
    except ValueError:
        return False


@dataclass(frozen=True)
class OtlpTransport:
    """How OTLP records leave: protocol and endpoint, each with the variable (or default) it came from.

    Precedence is the OTel specification's: ``OTEL_EXPORTER_OTLP_LOGS_PROTOCOL``, then
    ``OTEL_EXPORTER_OTLP_PROTOCOL``, then ``http/protobuf``; ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` as
    given, then ``OTEL_EXPORTER_OTLP_ENDPOINT`` (plus ``/v1/logs`` over HTTP), then localhost."""

    protocol: str
    protocol_from: str  # the variable it was read from, or "default"
    endpoint: str
    endpoint_from: str
    by_distro: bool = False  # the protocol variable was set by a distro, not by the user

    @classmethod
    def resolve(cls, environ: Mapping[str, str], initial: Mapping[str, str] | None = None,
                launcher: bool = False) -> "OtlpTransport":
        """``environ`` is what the exporter will read; ``initial`` the process's starting environment
        (``None`` where it cannot be read), so a protocol a distro set in-process is
        named as such. ``launcher`` asks what a process started by ``opentelemetry-instrument`` would do
        (for ``otel-audit status``, which runs outside it): the installed distro's default applies."""
        env = environ
        protocol, protocol_from, by_distro = "http/protobuf", "default", False
        for name in ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            value = (env.get(name) or "").strip()
            if value:
                protocol, protocol_from = value, name
                by_distro = initial is not None and not (initial.get(name) or "").strip() and _distro_installed()
                break
        else:
            if launcher and _distro_installed():
                protocol, protocol_from, by_distro = "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL", True
        http = protocol in _HTTP_PROTOCOLS
        logs_endpoint = (env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") or "").strip()
        base = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
        if logs_endpoint:
            endpoint, endpoint_from = logs_endpoint, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"
        elif base:
            endpoint = f"{base.rstrip('/')}/v1/logs" if http else base
            endpoint_from = "OTEL_EXPORTER_OTLP_ENDPOINT"
        else:
            endpoint = "http://localhost:4318/v1/logs" if http else "http://localhost:4317"
            endpoint_from = "default"
        return cls(protocol, protocol_from, endpoint, endpoint_from, by_distro)

    def check(self) -> None:
        """``ConfigError`` for a protocol no exporter here speaks, naming the variable it came from."""
        if self.protocol not in (*_HTTP_PROTOCOLS, "grpc"):
            hint = " (the Python OTLP exporters do not implement http/json)" if self.protocol == "http/json" else ""
            raise ConfigError(f"{self.protocol_from}: {self.protocol!r} is invalid: expected grpc or http/protobuf{hint}")

    def mismatch_warning(self) -> str | None:
        """Said once at start when the protocol is gRPC only by a distro's default while the endpoint is
        plainly OTLP/HTTP (a ``/v1/logs`` path or port 4318): records would pile up in the spool."""
        if self.protocol != "grpc" or not self.by_distro or not _looks_http(self.endpoint):
            return None
        return (f"records go over OTLP/gRPC only because opentelemetry-distro set {self.protocol_from}=grpc (its default), but "
                f"{self.endpoint_from}={shown_endpoint(self.endpoint)} is an OTLP/HTTP endpoint (nothing will "
                "arrive; records wait in the spool): set OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf, or point "
                "the endpoint at the gRPC port (4317)")

    def source_of_protocol(self) -> str:
        return f"{self.protocol_from} ({DISTRO_DEFAULT})" if self.by_distro else self.protocol_from

    def describe(self) -> str:
        return f"OTLP ({self.protocol}) to {shown_endpoint(self.endpoint)}"

    def as_dict(self) -> dict[str, str]:
        return {"exporter": "otlp", "protocol": self.protocol, "protocol_from": self.source_of_protocol(),
                "endpoint": shown_endpoint(self.endpoint), "endpoint_from": self.endpoint_from}
