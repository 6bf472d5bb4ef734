"""The local hour and weekday of a record in the time zone the policy names (``local_time``).

Sigma has no time of day, so a rule cannot say "outside office hours" about a timestamp; it can
compare a number. Records of the categories the policy lists carry ``audit.local_time.hour``
(0-23), ``audit.local_time.weekday`` (ISO: 1 Monday ... 7 Sunday) and ``audit.local_time.zone``,
and the office hours stay plain values in the rule (docs/detections.md).
"""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from typing import Any, Iterable

DEFAULT_ZONE = "UTC"
#: Where "when" is a question an auditor asks: grants and revocations, account changes, admin sites.
DEFAULT_CATEGORIES = ("authorization", "account_management", "admin")
#: Every zone's offset, and every change of it, falls on a quarter hour: within one, the local
#: hour and weekday cannot change, so one conversion serves every record of the quarter.
_QUARTER_NS = 900 * 1_000_000_000


def zone_named(name: str) -> tzinfo:
    """The zone an IANA name (``Europe/Berlin``, ``UTC``) names; ``ValueError`` saying why not."""
    if name == "UTC":
        return timezone.utc  # needs no time zone database
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        hint = "" if available_timezones() else " (this system has no time zone database: pip install tzdata)"
        raise ValueError(f"{name!r} is not a time zone: expected an IANA name such as Europe/Berlin, "
                         f"America/New_York or UTC{hint}") from None


class LocalTime:
    """Stamps records of ``categories`` with their local hour, weekday and zone."""

    __slots__ = ("zone", "categories", "_tz", "_last")

    def __init__(self, zone: str = DEFAULT_ZONE, categories: Iterable[str] = DEFAULT_CATEGORIES) -> None:
        self.zone = zone
        self.categories = frozenset(categories)
        self._tz = zone_named(zone)
        self._last: tuple[int | None, dict[str, Any]] = (None, {})  # (quarter, its attributes): swapped whole

    def attributes(self, unix_nano: int) -> dict[str, Any]:
        """The attributes for a record at ``unix_nano`` (shared between records: do not change it)."""
        quarter, stamp = self._last
        if quarter != unix_nano // _QUARTER_NS:
            quarter = unix_nano // _QUARTER_NS
            local = datetime.fromtimestamp(quarter * 900, self._tz)
            stamp = {"audit.local_time.hour": local.hour, "audit.local_time.weekday": local.isoweekday(),
                     "audit.local_time.zone": self.zone}
            self._last = (quarter, stamp)
        return stamp
