"""A process that notes an intent and is killed (``kill -9``) before or after finishing its request.

``python -m tests.delivery.intent_victim PLAN EVENT_ID``; PLAN is one of:

* ``intent``  - the intent only (the process dies between the commit and the response);
* ``final``   - the intent, then the final record with the same event id;
* ``resolve`` - the intent, then the policy's "no record" (resolve);
* ``passed``  - the intent, then other records the exporter sends before the kill (it passes the
  intent in the spool), then the kill;
* ``exit``    - the intent, then a clean exit (a request still running when the process ends).

It prints the event ids of the records it emitted, one per line, before it kills itself.
"""

from __future__ import annotations

import os
import signal
import sys

from otel_audit import runtime
from otel_audit.event import Actor, AuditEvent

INTENT_ATTRIBUTES = {
    "audit.category": "data_modification",
    "audit.action": "update_resource",
    "enduser.id": "42",
    "user.name": "alice",
    "http.request.method": "POST",
    "http.route": "/cards/<number>",
    "url.path": "/cards/4111111111111111",  # a card number: must be redacted before it is spooled
    "db.collection.name": "cards",
    "db.operation.name": "UPDATE",
    "client.address": "203.0.113.7",
    "audit.origin": "flask",
}
CARD = "4111111111111111"


def _record(event_id: str | None = None) -> str:
    event = AuditEvent(category="configuration", action="config_change", outcome="success",
                       actor=Actor(id="42", name="alice"), attributes={"app.note": "victim"})
    if event_id is not None:
        event.event_id = event_id
    assert runtime.get_runtime().record(event)
    return event.event_id


def main(plan: str, event_id: str) -> None:
    rt = runtime.start()
    rt.note_intent(event_id, dict(INTENT_ATTRIBUTES))
    emitted = []
    if plan == "final":
        emitted.append(_record(event_id))
    elif plan == "resolve":
        rt.resolve_intent(event_id)
    elif plan == "passed":
        emitted += [_record() for _ in range(3)]
        assert runtime.flush()  # exported: the exporter has read past the intent
    for emitted_id in emitted:
        print(emitted_id, flush=True)
    if plan == "exit":
        raise SystemExit(0)  # atexit: the runtime shuts down cleanly
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
