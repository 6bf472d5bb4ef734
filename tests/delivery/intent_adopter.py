"""A process that starts auditing (and so adopts dead spools) and waits until only its own spool is left.

``python -m tests.delivery.intent_adopter [--hang]``: with ``--hang`` it never exits (the test
kills it mid-adoption); otherwise it flushes and ends cleanly once the dead spools are drained.
"""

from __future__ import annotations

import sys
import time

from otel_audit import runtime
from otel_audit.delivery.spool import spool_dirs


def main(hang: bool) -> None:
    rt = runtime.start()
    processor = rt.processor
    if hang:
        while True:
            time.sleep(1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        own = processor._spool.path if processor._spool is not None else None  # noqa: SLF001 - read only
        if own is not None and spool_dirs(processor.options.spool_dir) == [own]:
            break
        time.sleep(0.05)
    else:
        raise SystemExit("dead spools were not drained within 60 s")
    assert runtime.flush()


if __name__ == "__main__":
    main("--hang" in sys.argv[1:])
