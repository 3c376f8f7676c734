"""Conditions read in Python: operators, type-guarded comparisons, durations, history, and the
plain form delayed jobs carry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.rules.conditions import (
    Compare,
    Condition,
    Group,
    History,
    StaticContext,
    describe,
    evaluate,
    first_failing,
    from_plain,
    parse_duration,
    to_plain,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DOC = {
    "type": "order.placed",
    "fact": {"id": 10, "type": "order.placed", "occurred_at": NOW.isoformat()},
    "data": {
        "total": 80,
        "code": "3",
        "note": "",
        "sku": "AB-12",
        "coupon": None,
        "lines": ["shirt", "socks"],
        "paid": True,
        "shipped_at": (NOW - timedelta(hours=2)).isoformat(),
    },
    "profile": {"status": "subscribed", "tags": ["vip", "buyer"], "fields": {"city": "Delft"}},
}


@pytest.mark.parametrize(
    ("path", "op", "value", "holds"),
    [
        ("data.total", "eq", 80, True),
        ("data.total", "eq", 80.0, True),
        ("data.total", "eq", "80", False),  # a text is never equal to a number
        ("data.code", "eq", 3, False),
        ("data.code", "eq", "3", True),
        ("data.paid", "eq", 1, False),  # nor a boolean to a number
        ("data.coupon", "eq", None, True),
        ("data.total", "ne", 80, False),
        ("data.total", "ne", "80", True),
        ("data.missing", "ne", 80, False),  # a missing path makes every comparison false
        ("data.total", "gt", 50, True),
        ("data.total", "gte", 80, True),
        ("data.total", "lt", 80, False),
        ("data.total", "lte", 80, True),
        ("data.code", "gt", 1, False),  # no ordering between a text and a number
        ("data.code", "lt", 10, False),
        ("data.sku", "gt", "AB", True),
        ("data.note", "lt", "a", False),  # an empty text is a kind apart
        ("data.total", "in", [10, 80], True),
        ("data.total", "in", ["80"], False),
        ("data.total", "not_in", [10, 20], True),
        ("data.missing", "not_in", [10], False),
        ("profile.tags", "contains", "vip", True),
        ("profile.tags", "contains", "vi", False),  # a list contains whole items
        ("data.sku", "contains", "B-1", True),
        ("data.total", "contains", 8, False),
        ("data.sku", "matches", "AB-[0-9]+", True),
        ("data.sku", "matches", "AB", False),  # the whole text must match
        ("data.total", "matches", "80", False),
        ("data.coupon", "exists", True, True),  # null is a value
        ("data.missing", "exists", True, False),
        ("data.missing", "missing", True, True),
        ("data.coupon", "missing", True, False),
        ("profile.fields.city", "eq", "Delft", True),
        ("profile.fields.city.name", "exists", True, False),  # inside a text: missing
        ("data.shipped_at", "within", "3h", True),
        ("data.shipped_at", "within", "1h", False),
        ("data.shipped_at", "before", "1h", True),
        ("data.shipped_at", "before", "3h", False),
        ("data.sku", "within", "3h", False),  # not a date
    ],
)
def test_comparisons(path: str, op: str, value: Any, holds: bool) -> None:
    assert evaluate(Compare(path, op, value), DOC, StaticContext(now=NOW)) is holds


def test_an_unknown_operator_raises() -> None:
    with pytest.raises(ValueError, match="unknown operator 'like'"):
        evaluate(Compare("data.total", "like", 8), DOC)


@pytest.mark.parametrize(
    ("kind", "items", "holds"),
    [
        ("all", (Compare("data.total", "gt", 50), Compare("data.paid", "eq", True)), True),
        ("all", (Compare("data.total", "gt", 50), Compare("data.paid", "eq", False)), False),
        ("any", (Compare("data.total", "gt", 500), Compare("data.paid", "eq", True)), True),
        ("any", (Compare("data.total", "gt", 500), Compare("data.paid", "eq", False)), False),
        ("none", (Compare("data.total", "gt", 500), Compare("data.paid", "eq", False)), True),
        ("none", (Compare("data.total", "gt", 500), Compare("data.paid", "eq", True)), False),
        ("all", (), True),
        ("any", (), False),
    ],
)
def test_groups(kind: Any, items: tuple[Condition, ...], holds: bool) -> None:
    assert evaluate(Group(kind, items), DOC) is holds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), ("1w", 604800), (" 3 d ", 259200)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["7 days", "1y", "d", "-1d", "1.5h", "", None, True, 30, "7D"])
def test_parse_duration_refuses_what_is_no_duration(text: Any) -> None:
    with pytest.raises(ValueError, match="is not a duration such as 30m, 2h, 7d or 1w"):
        parse_duration(text)


def past(fact_id: int, fact_type: str, ago: timedelta, **data: Any) -> dict[str, Any]:
    at = (NOW - ago).isoformat()
    return {"type": fact_type, "fact": {"id": fact_id, "occurred_at": at}, "data": data}


HISTORY = [
    past(1, "order.placed", timedelta(days=40), total=120),
    past(2, "order.placed", timedelta(days=10), total=150),
    past(3, "order.placed", timedelta(days=5), total=20),
    past(4, "order.refunded", timedelta(days=1)),
    past(10, "order.placed", timedelta(0), total=80),  # the fact being evaluated
]


BIG = Group("all", (Compare("data.total", "gte", 100),))


@pytest.mark.parametrize(
    ("history", "holds"),
    [
        (History("order.placed", count=3), True),  # the fact itself never counts
        (History("order.placed", count_op="eq", count=3), True),
        (History("order.placed", within=30 * 86400, count=3), False),
        (History("order.placed", within=30 * 86400, count=2), True),
        (History("order.*", count=4), True),
        (
            History("order.placed", Group("all", (Compare("data.total", "gte", 100),)), count=2),
            True,
        ),
        (
            History("order.placed", Group("all", (Compare("data.total", "gte", 100),)), count=3),
            False,
        ),
        (History("order.refunded", count_op="eq", count=0), False),
        (History("order.cancelled", count_op="eq", count=0), True),
    ],
)
def test_history_counts_the_profiles_other_facts(history: History, holds: bool) -> None:
    ctx = StaticContext(now=NOW, history=lambda _doc, _since: HISTORY)
    assert evaluate(history, DOC, ctx) is holds


def test_history_since_the_trigger_counts_only_what_came_after_it() -> None:
    trigger = past(2, "order.shipped", timedelta(days=7))
    trigger["profile"] = {}
    ctx = StaticContext(now=NOW, history=lambda _doc, _since: HISTORY)
    refunded = History("order.refunded", since_trigger=True)
    placed = History("order.placed", since_trigger=True, count_op="eq", count=2)
    assert evaluate(refunded, trigger, ctx) and evaluate(placed, trigger, ctx)


def test_first_failing_and_describe_name_the_condition_and_its_value() -> None:
    cond = Group(
        "all",
        (
            Compare("data.total", "gte", 50),
            Group("all", (Compare("profile.status", "eq", "bounced"),)),
            Compare("data.missing", "eq", 1),
        ),
    )
    failing = first_failing(cond, DOC)
    assert failing == Compare("profile.status", "eq", "bounced")
    assert describe(failing, DOC) == "profile.status eq 'bounced' (it is 'subscribed')"
    assert describe(Compare("data.missing", "exists"), DOC) == "data.missing exists (it is missing)"
    assert first_failing(Group("all", (Compare("data.total", "gte", 50),)), DOC) is None


PLAIN_CASES: list[Condition] = [
    Compare("data.total", "gte", 50),
    Compare("data.country", "in", ["NL", "BE"]),
    Compare("data.coupon", "eq", None),
    Group("none", (Compare("profile.status", "eq", "subscribed"),)),
    History("order.refunded", since_trigger=True),
    History(
        "order.placed",
        where=Group("any", (Compare("data.total", "gte", 100), Compare("data.vip", "eq", True))),
        within=90 * 86400,
        count_op="lt",
        count=3,
    ),
    Group(
        "all",
        (
            Compare("profile.status", "ne", "subscribed"),
            Group(
                "any", (History("mail.clicked", since_trigger=True), Compare("data.x", "exists"))
            ),
        ),
    ),
]


@pytest.mark.parametrize("cond", PLAIN_CASES)
def test_plain_form_survives_a_json_round_trip(cond: Condition) -> None:
    carried = json.loads(json.dumps(to_plain(cond)))  # as a delayed job keeps it in Redis
    assert from_plain(carried) == cond
