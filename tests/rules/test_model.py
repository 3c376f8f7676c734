"""A rule's actions: when each is due (``after``, ``at`` templates, past dates run now)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.rules.document import document
from hub.rules.model import ActionCall

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def doc(**data: Any) -> dict[str, Any]:
    fact = {"id": 7, "type": "form.submitted", "occurred_at": NOW.isoformat(), "data": data}
    return document(fact, {"email": "ann@example.com", "fields": {"birthday": "2026-04-02"}})


def call(after: int | None = None, at: str | None = None) -> ActionCall:
    return ActionCall("send_mail", {"template": "t", "subject": "s"}, 3, after=after, at=at)


@pytest.mark.parametrize(
    ("action", "delayed", "due"),
    [
        (call(), False, None),
        (call(after=0), True, NOW),
        (call(after=3600), True, NOW + timedelta(hours=1)),
        (call(after=7 * 86400), True, NOW + timedelta(days=7)),
        (call(at="2026-03-05T09:30:00Z"), True, datetime(2026, 3, 5, 9, 30, tzinfo=UTC)),
        (call(at="{{ fact.data.remind_at }}"), True, datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        (call(at="{{ profile.fields.birthday }}"), True, datetime(2026, 4, 2, tzinfo=UTC)),
        # a date without a zone is UTC; one with an offset is kept as that instant
        (call(at="2026-03-05T10:00:00"), True, datetime(2026, 3, 5, 10, 0, tzinfo=UTC)),
        (call(at="2026-03-05T10:00:00+02:00"), True, datetime(2026, 3, 5, 8, 0, tzinfo=UTC)),
        # a date in the past runs now, never before the fact
        (call(at="2020-01-01T00:00:00Z"), True, NOW),
        (call(at="{{ fact.occurred_at }}"), True, NOW),
    ],
)
def test_due_at(action: ActionCall, delayed: bool, due: datetime | None) -> None:
    assert action.delayed is delayed
    assert action.due_at(doc(remind_at="2026-03-02T08:00:00Z"), NOW) == due


@pytest.mark.parametrize("remind_at", ["soon", "", "2026-13-45", 42, None, ["2026-03-02"]])
def test_an_at_that_gives_no_date_raises_value_error(remind_at: Any) -> None:
    with pytest.raises(ValueError, match="'at' of send_mail did not give a date"):
        call(at="{{ fact.data.remind_at }}").due_at(doc(remind_at=remind_at), NOW)
