"""An HTTP status as an audit outcome: the one reading shared by the web adapters, ``policy
explain`` / ``lint`` and the compliance report. Pure; imports nothing of the package."""

from __future__ import annotations


def outcome_for_status(status: int | None) -> tuple[str, str | None]:
    """2xx/3xx success, 401 failure, 403 denied, other 4xx/5xx failure."""
    if status is None:
        return "unknown", None
    if status < 400:
        return "success", None
    if status == 401:
        return "failure", "unauthenticated"
    if status == 403:
        return "denied", "forbidden"
    return "failure", f"http {status}"
