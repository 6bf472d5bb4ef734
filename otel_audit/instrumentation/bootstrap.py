"""The always-on instrumentor: starts auditing when the process starts under
``opentelemetry-instrument`` (lifecycle records, policy load), even before any framework hook fires."""

from __future__ import annotations

import os
import sys
from typing import Any, Collection

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_audit import runtime
from otel_audit.errors import ConfigError, OtelAuditError


class AuditCoreInstrumentor(BaseInstrumentor):
    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        # The launcher swallows exceptions from instrumentors, so refusing to start has to be a
        # SystemExit. Two cases refuse: a bad OTEL_AUDIT_* value (a deploy-time mistake, found on the
        # first start), and a broken policy under fail-closed. A broken policy under fail-open
        # never gets here: the policy module falls back and says so loudly.
        try:
            runtime.start()
        except (ConfigError, OtelAuditError) as exc:
            kind = "configuration" if isinstance(exc, ConfigError) else "policy (fail-closed)"
            print(f"otel-audit: refusing to start: invalid {kind}: {exc}", file=sys.stderr)
            sys.stderr.flush()
            # os._exit, not SystemExit: in sitecustomize a SystemExit becomes a confusing traceback
            # and exit status 1. Nothing of ours needs flushing yet: auditing never started.
            os._exit(78)  # EX_CONFIG

    def _uninstrument(self, **kwargs: Any) -> None:
        runtime.stop()
