"""A plain script whose stdlib logs carry secrets in ``extra``: run under opentelemetry-instrument."""

import logging

log = logging.getLogger("shop")
log.setLevel(logging.INFO)
log.warning(
    "payment by %s failed with card %s",
    "bob@example.com",
    "4111 1111 1111 1111",
    extra={
        "password": "hunter2-from-extra",
        "card_number": "5555555555554444",
        "db_dsn": "postgres://app:S3cretPw-in-dsn@db/x",
        "order_id": "ORD-1",
    },
)
log.warning("clean message", extra={"order_id": "ORD-2"})
