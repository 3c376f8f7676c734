"""Time as the hub keeps it: aware UTC now, and stored timestamps read back as aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from hub.times import parse_time, utcnow


def test_utcnow_is_aware_utc() -> None:
    before = datetime.now(UTC)
    now = utcnow()
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)


CET = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00+00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T11:00:00+01:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),  # naive text is UTC
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        (datetime(2024, 5, 1, 10), datetime(2024, 5, 1, 10, tzinfo=UTC)),  # naive is UTC
        (datetime(2024, 5, 1, 11, tzinfo=CET), datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ],
)
def test_parse_time_gives_the_same_instant_always_aware(value: Any, expected: datetime) -> None:
    parsed = parse_time(value)
    assert parsed is not None and parsed.tzinfo is not None
    assert parsed == expected


@pytest.mark.parametrize("value", ["yesterday", "", "2024-13-01T00:00:00", None, 1714557600, []])
def test_parse_time_of_something_that_is_no_time_is_none(value: Any) -> None:
    assert parse_time(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        datetime(1, 1, 1, tzinfo=CET),
    ],
)
def test_a_time_outside_the_years_1_to_9999_in_utc_is_none(value: Any) -> None:
    # valid ISO 8601, but its instant cannot be compared or converted (OverflowError)
    assert parse_time(value) is None


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00-01:00", "9999-12-31T23:59:59+01:00"])
def test_a_time_near_the_edges_that_stays_inside_them_is_kept(value: str) -> None:
    parsed = parse_time(value)
    assert parsed is not None and parsed.astimezone(UTC).year in (1, 9999)
