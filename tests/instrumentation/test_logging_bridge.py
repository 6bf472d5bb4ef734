"""The stdlib logging bridge: lines on the audit loggers become audit events through the pipeline."""

from __future__ import annotations

import logging
import logging.config

from otel_audit.context import RequestScope, enter_scope, exit_scope
from otel_audit.event import Actor
from otel_audit.instrumentation.logging import AuditLogHandler, LoggingAuditInstrumentor


def test_audit_logger_lines_become_classified_events(audit, instrument):
    instrument(LoggingAuditInstrumentor())
    token = enter_scope(RequestScope(actor=Actor(id="42", type="user")))
    try:
        logging.getLogger("audit").info(
            "role %s granted", "editor",
            extra={"audit_action": "grant_role", "audit_target": "user:7", "ticket": "OPS-12", "secret_obj": object()},
        )
    finally:
        exit_scope(token)
    logging.getLogger("audit.payments").error("refund failed")  # child loggers propagate to the handler
    logging.getLogger("unrelated").warning("not audited")

    grant, refund = [e for e in audit.events if e.origin.startswith("logging.")]
    assert (grant.category, grant.action, grant.outcome) == ("authorization", "grant_role", "success")
    assert grant.actor.id == "42" and (grant.target.type, grant.target.id) == ("user", "7")
    assert grant.message == "role editor granted" and grant.attributes["app.ticket"] == "OPS-12"
    assert "app.secret_obj" not in grant.attributes
    assert (refund.category, refund.action, refund.outcome) == ("admin", "refund_failed", "failure")
    assert refund.attributes["audit.log.logger"] == "audit.payments"
    exported = [r for r in audit.records() if r["event_name"] == "audit.authorization.grant_role"]
    assert exported and exported[0]["body"].startswith("role editor granted")


def test_security_logger_defaults_and_configured_names(audit, instrument, monkeypatch):
    monkeypatch.setenv("OTEL_AUDIT_LOGGERS", "django.security, myapp.audit")
    instrument(LoggingAuditInstrumentor())
    logging.getLogger("django.security.DisallowedHost").error("Invalid HTTP_HOST header: 'evil'")
    logging.getLogger("myapp.audit").info("export", extra={"audit_category": "data_access", "audit_outcome": "success"})
    logging.getLogger("audit").warning("not configured any more")
    host, export = [e for e in audit.events if e.origin.startswith("logging.")]
    assert (host.category, host.action, host.outcome) == ("authorization", "disallowedhost", "denied")
    assert (export.category, export.action) == ("data_access", "export")


def test_dictconfig_after_instrumentation_keeps_the_bridge(audit, instrument):
    instrument(LoggingAuditInstrumentor())
    logging.config.dictConfig({"version": 1, "loggers": {"audit": {"level": "INFO", "handlers": []}}})
    assert any(isinstance(h, AuditLogHandler) for h in logging.getLogger("audit").handlers)
    logging.getLogger("audit").info("config reloaded", extra={"audit_category": "configuration"})
    assert [e.action for e in audit.events if e.origin == "logging.audit"] == ["config_reloaded"]


def test_uninstrument_detaches(audit):
    instrumentor = LoggingAuditInstrumentor()
    instrumentor.instrument(skip_dep_check=True)
    instrumentor.uninstrument()
    logging.getLogger("audit").warning("after uninstrument")
    assert not [e for e in audit.events if e.origin.startswith("logging.")]
    assert not any(isinstance(h, AuditLogHandler) for h in logging.getLogger("audit").handlers)
