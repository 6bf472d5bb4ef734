"""The always-on instrumentor: starts auditing when the process starts under
``opentelemetry-instrument`` (lifecycle records, policy load), even before any framework hook fires."""

from __future__ import annotations

from typing import Any, Collection

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_audit import runtime


class AuditCoreInstrumentor(BaseInstrumentor):
    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        # Configuration errors propagate on purpose: a bad OTEL_AUDIT_* value or (fail-closed) a
        # broken policy must stop start-up loudly rather than run unaudited.
        runtime.start()

    def _uninstrument(self, **kwargs: Any) -> None:
        runtime.reset_for_tests()
