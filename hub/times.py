"""Time as the hub keeps it: aware UTC datetimes, stored and exchanged as ISO 8601 text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


def in_utc_range(moment: datetime) -> bool:
    """Whether an aware ``moment`` is an instant of the years 1 to 9999 in UTC.

    ``0001-01-01T00:00:00+01:00`` is valid ISO 8601 but the last hour of year 0 in UTC:
    Python cannot convert or compare it (``OverflowError``). A naive time is in range.
    """
    if moment.tzinfo is None:
        return True
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


def parse_time(value: Any) -> datetime | None:
    """A stored timestamp (ISO text or datetime) as an aware datetime, or None.

    None also for a time whose offset puts its instant outside the years 1 to 9999
    (``0001-01-01T00:00:00+01:00`` is the last hour of year 0 in UTC): Python cannot compare
    or convert it (``OverflowError``), so it is no time the hub can use.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    if not in_utc_range(parsed):
        return None
    return parsed
