"""psycopg 3: ``psycopg.connect`` returns an audited connection (sync; SQLAlchemy's async psycopg
driver is covered by the SQLAlchemy adapter)."""

from __future__ import annotations

from typing import Any, Collection

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_audit.errors import containment
from otel_audit.instrumentation._patch import Patch
from otel_audit.instrumentation.dbapi.connection import AuditedConnection, DbFacts


def _psycopg_connect(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    connection = wrapped(*args, **kwargs)
    try:
        return AuditedConnection(connection, DbFacts("postgresql", connection.info.dbname, connection))
    except Exception as exc:  # noqa: BLE001
        containment.record("psycopg connect", exc)
        return connection


class PsycopgAuditInstrumentor(BaseInstrumentor):
    """Audits statements run through ``psycopg.connect`` connections (sync; SQLAlchemy's async
    psycopg driver is covered by the SQLAlchemy adapter)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("psycopg >= 3.1",)

    _patch: Patch | None = None

    def _instrument(self, **kwargs: Any) -> None:
        try:
            import psycopg
        except ImportError:  # not installed: nothing to audit
            return
        PsycopgAuditInstrumentor._patch = Patch(psycopg, "connect", _psycopg_connect)
        PsycopgAuditInstrumentor._patch.install()

    def _uninstrument(self, **kwargs: Any) -> None:
        if PsycopgAuditInstrumentor._patch is not None:
            PsycopgAuditInstrumentor._patch.remove()
            PsycopgAuditInstrumentor._patch = None
