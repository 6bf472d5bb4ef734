"""The pipeline's own bookkeeping attributes pass redaction untouched, even when they look like
something a detector or key rule would catch (a tag like ``pci-dss:10.2.1.1`` reads as an IPv4
address; ``session:user_id`` as a secret assignment)."""

from otel_audit.redaction import Redactor


def test_bookkeeping_attributes_survive_redaction() -> None:
    attrs = {
        "audit.tags": ["pci-dss:10.2.1.1", "soc2:CC7.2"],
        "audit.actor.source": "session:user_id",
        "audit.classification.route": "builtin.password_reset",
        "http.route": "/reset/<token>",
        "password": "hunter2",
    }
    out = Redactor.from_config({}).redact_attributes(attrs)
    assert out["audit.tags"] == ["pci-dss:10.2.1.1", "soc2:CC7.2"]
    assert out["audit.actor.source"] == "session:user_id"
    assert out["audit.classification.route"] == "builtin.password_reset"
    assert out["http.route"] == "/reset/<token>"
    assert out["password"] != "hunter2"
