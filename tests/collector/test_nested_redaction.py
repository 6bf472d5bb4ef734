"""Redaction in depth reaches nested values: the gateway masks secrets inside map and array
attributes (audit.changes entries, db.query.parameters, request bodies, header lists), which
redaction/secrets alone lets through, and leaves clean nested records byte-identical."""

from __future__ import annotations

import json

from .test_e2e import read_file_journal, wait_for_ids

SECRETS = ("hunter2", "old-pw", "new-pw", "sk_live_abc123", "s3cr3t-t0ken", "abcd1234")

CLEAN = {
    # what otel-audit itself writes: secret fields as {} or placeholders, field names as strings
    "audit.changes": [
        {"action": "update_user", "type": "auth.user", "id": "7", "fields": ["password", "email"], "rows": 1,
         "values": {"password": {}, "email": {"old": "[REDACTED:email]", "new": "[REDACTED:email]"}}},
        {"action": "create_resource", "type": "notes.note", "fields": ["title"], "rows": 1},
    ],
    "db.query.parameters": {"title": "Quarterly plan", "api_key": "[REDACTED:secret_key]", "n": 3},
    "audit.request.body": {"items": [{"sku": "A-1", "qty": 2}], "token_count": 5},
}


def test_nested_secrets_are_masked_and_clean_nested_records_untouched(run_collector, make_sender) -> None:
    collector = run_collector(["gateway.yaml", "file.yaml"])
    sender = make_sender(collector.otlp_http_endpoint)
    leaky = sender.audit(**{
        "audit.changes": [{"action": "update_user", "type": "auth.user", "id": "7", "fields": ["password"],
                           "values": {"password": {"old": "old-pw", "new": "new-pw"}}}],
        "db.query.parameters": {"password": "hunter2", "name": "bob"},
        "audit.request.body": {"user": {"api_key": "sk_live_abc123"}, "note": "retry with token=abcd1234"},
        "audit.notes": ["fine", "upstream said Authorization: Bearer s3cr3t-t0ken"],
    })
    clean = sender.audit(**CLEAN)
    app = sender.app("nested", **{"request.params": {"password": "hunter2"}})
    records = wait_for_ids(lambda: read_file_journal(collector.workdir / "audit.jsonl"), {leaky, clean})
    by_id = {r["attributes"]["audit.event_id"]: r["attributes"] for r in records}

    masked = by_id[leaky]
    rendered = json.dumps(masked, default=list)
    for secret in SECRETS:
        assert secret not in rendered, f"{secret} passed the gateway: {rendered}"
    assert masked["audit.changes"][0]["values"]["password"] == "****"
    assert list(masked["audit.changes"][0]["fields"]) == ["password"]  # a field's name is no secret
    assert masked["db.query.parameters"] == {"password": "****", "name": "bob"}
    assert masked["audit.request.body"]["user"]["api_key"] == "****"
    assert masked["audit.request.body"]["note"] == "retry with ****"
    assert list(masked["audit.notes"]) == ["fine", "upstream said ****"]
    assert not any(k.startswith("redaction.") for k in masked)

    untouched = by_id[clean]
    expected = json.loads(json.dumps(CLEAN))
    assert json.loads(json.dumps({k: untouched[k] for k in CLEAN}, default=list)) == expected
    assert app  # the app pipeline runs the same pass (its records go to debug/app only)
