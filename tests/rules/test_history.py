"""A profile's past for history conditions and limits: read from the database once per batch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from hub.models import Fact, Profile, RuleFiring
from hub.rules.conditions import Group
from hub.rules.history import DbContext, apply_limits, limit_reason
from hub.rules.model import Rule
from hub.runtime import Runtime

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class Seeded:
    ann: int
    bo: int
    facts: dict[str, int]


def seed(rt: Runtime) -> Seeded:
    """Two profiles, their past facts and the firings of two rules."""
    with rt.db.session() as s:
        ann = Profile(email="ann@example.com", fields={}, tags=[])
        bo = Profile(email="bo@example.com", fields={}, tags=[])
        s.add_all([ann, bo])
        s.flush()
        rows = {
            "ann-old": Fact(type="order.placed", source="shop", occurred_at=NOW - 40 * DAY,
                            data={"total": 120}, profile_id=ann.id, status="evaluated"),
            "ann-new": Fact(type="order.placed", source="shop", occurred_at=NOW - 2 * DAY,
                            data={"total": 20}, profile_id=ann.id, status="evaluated"),
            "ann-click": Fact(type="mail.clicked", source="hub", occurred_at=NOW - DAY,
                              data={}, profile_id=ann.id, status="evaluated"),
            "bo-order": Fact(type="order.shipped", source="shop", occurred_at=NOW - 3 * DAY,
                             data={"total": 60}, profile_id=bo.id, status="evaluated"),
        }  # fmt: skip
        s.add_all(rows.values())
        s.flush()
        for key, rule, at in [
            ("ann-old", "thanks", NOW - 40 * DAY),
            ("ann-new", "thanks", NOW - 2 * DAY),
            ("ann-new", "tag", NOW - 2 * DAY),
            ("bo-order", "thanks", NOW - 3 * DAY),
        ]:
            s.add(
                RuleFiring(
                    fact_id=rows[key].id,
                    profile_id=rows[key].profile_id,
                    rule_name=rule,
                    rule_file="orders.yaml",
                    ruleset_version="v1",
                    jobs=[],
                    fired_at=at,
                )
            )
        return Seeded(ann.id, bo.id, {k: f.id for k, f in rows.items()})


@contextmanager
def statements(rt: Runtime) -> Iterator[list[str]]:
    """The SQL statements run on the hub's database while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append(sql)

    event.listen(rt.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", record)


def about(profile_id: int | None) -> dict[str, Any]:
    return {"type": "order.placed", "profile": {"id": profile_id} if profile_id else {}}


def ids(docs: list[dict[str, Any]]) -> list[int]:
    return [d["fact"]["id"] for d in docs]


def test_facts_of_every_profile_of_the_batch_are_read_in_one_query(hub_runtime: Runtime) -> None:
    seeded = seed(hub_runtime)
    f = seeded.facts
    with hub_runtime.db.session() as s:
        ctx = DbContext(s, now=NOW, batch_profiles={seeded.ann, seeded.bo})
        with statements(hub_runtime) as sql:
            ann = ctx.facts(about(seeded.ann), None)
            bo = ctx.facts(about(seeded.bo), None)
            recent = ctx.facts(about(seeded.ann), NOW - 30 * DAY)
            again = ctx.facts(about(seeded.ann), None)
        assert len(sql) == 1
    assert ids(ann) == [f["ann-click"], f["ann-new"], f["ann-old"]]  # newest first
    assert ids(bo) == [f["bo-order"]] and ids(again) == ids(ann)
    assert ids(recent) == [f["ann-click"], f["ann-new"]]
    assert ann[1]["data"] == {"total": 20} and "profile" not in ann[1]
    assert ann[1]["_at"].replace(tzinfo=UTC) == NOW - 2 * DAY


def test_a_document_without_profile_has_no_history(hub_runtime: Runtime) -> None:
    seed(hub_runtime)
    with hub_runtime.db.session() as s:
        assert DbContext(s, now=NOW).facts(about(None), None) == []


@pytest.mark.parametrize(
    ("history_types", "expected"),
    [
        (None, ["ann-click", "ann-new", "ann-old"]),
        (["order.placed"], ["ann-new", "ann-old"]),
        (["order.*"], ["ann-new", "ann-old"]),
        (["mail.?licked"], ["ann-click"]),
        # a glob SQL cannot say reads everything (conditions still match the type)
        (["[m]ail.clicked"], ["ann-click", "ann-new", "ann-old"]),
        (["survey.completed"], []),
        ([], []),
    ],
)
def test_only_the_fact_types_the_rules_ask_for_are_read(
    hub_runtime: Runtime, history_types: list[str] | None, expected: list[str]
) -> None:
    seeded = seed(hub_runtime)
    with hub_runtime.db.session() as s:
        ctx = DbContext(s, now=NOW, history_types=history_types)
        found = ids(ctx.facts(about(seeded.ann), None))
    assert found == [seeded.facts[k] for k in expected]


def test_facts_of_the_batch_are_history_once_each(hub_runtime: Runtime) -> None:
    seeded = seed(hub_runtime)
    with hub_runtime.db.session() as s:
        linked = s.get(Fact, seeded.facts["ann-new"])  # in the batch and already linked
        new = Fact(type="order.placed", source="shop", occurred_at=NOW, data={"total": 5})
        other = Fact(type="mail.opened", source="hub", occurred_at=NOW, data={})
        s.add_all([new, other])
        s.flush()
        batch = [(seeded.ann, linked), (seeded.ann, new), (seeded.ann, other)]
        ctx = DbContext(s, now=NOW, batch_facts=batch, history_types=["order.*"])
        found = ids(ctx.facts(about(seeded.ann), None))
    assert sorted(found) == sorted([seeded.facts["ann-old"], linked.id, new.id])


def test_firings_are_read_once_per_batch_and_this_batchs_are_added(hub_runtime: Runtime) -> None:
    seeded = seed(hub_runtime)
    with hub_runtime.db.session() as s:
        ctx = DbContext(s, now=NOW, batch_profiles={seeded.ann, seeded.bo})
        with statements(hub_runtime) as sql:
            ann = ctx.firings(seeded.ann)
            ctx.record(seeded.bo, "tag", NOW)
            bo = ctx.firings(seeded.bo)
        assert len(sql) == 1
    assert sorted(name for name, _ in ann) == ["tag", "thanks", "thanks"]
    assert [(n, at.replace(tzinfo=UTC)) for n, at in bo] == [
        ("thanks", NOW - 3 * DAY),
        ("tag", NOW),
    ]


def test_only_firings_of_rules_with_limits_are_read(hub_runtime: Runtime) -> None:
    seeded = seed(hub_runtime)
    with hub_runtime.db.session() as s:
        ctx = DbContext(s, now=NOW, limited_rules={"tag"})
        assert [name for name, _ in ctx.firings(seeded.ann)] == ["tag"]


def rule(name: str = "thanks", once: bool = False, at_most: tuple[int, int] | None = None) -> Rule:
    return Rule(name, "orders.yaml", 1, "order.placed", Group("all", ()), (), once_per_profile=once,
                at_most=at_most)  # fmt: skip


@pytest.mark.parametrize(
    ("limited", "firings", "reason"),
    [
        (rule(once=True), [], None),
        (rule(once=True), [("other", NOW - DAY)], None),
        (
            rule(once=True),
            [("thanks", NOW - DAY), ("thanks", NOW - 9 * DAY)],
            f"once_per_profile: fired already at {(NOW - 9 * DAY).isoformat()}",
        ),
        (rule(at_most=(1, 7 * 86400)), [("thanks", NOW - 8 * DAY)], None),
        (
            rule(at_most=(1, 7 * 86400)),
            [("thanks", NOW - 6 * DAY)],
            "at_most 1 per 604800s: fired 1 times in that window",
        ),
        (rule(at_most=(2, 86400)), [("thanks", NOW - DAY / 2), ("other", NOW)], None),
        (
            rule(at_most=(2, 86400)),
            [("thanks", NOW - DAY / 2), ("thanks", NOW - DAY / 4), ("thanks", NOW - 2 * DAY)],
            "at_most 2 per 86400s: fired 2 times in that window",
        ),
        (rule(), [("thanks", NOW)] * 5, None),
    ],
)
def test_limit_reason(
    limited: Rule, firings: list[tuple[str, datetime]], reason: str | None
) -> None:
    assert limit_reason(limited, firings, NOW) == reason


def test_apply_limits_holds_back_limited_rules_and_reads_firings_only_for_them() -> None:
    asked: list[int] = []

    def firings(profile_id: int) -> list[tuple[str, datetime]]:
        asked.append(profile_id)
        return [("once", NOW - DAY)]

    rules = [rule("free"), rule("once", once=True), rule("weekly", at_most=(1, 7 * 86400))]
    allowed, held = apply_limits(rules, 4, firings, NOW)
    assert [r.name for r in allowed] == ["free", "weekly"]
    assert held == {"once": f"once_per_profile: fired already at {(NOW - DAY).isoformat()}"}
    assert asked == [4, 4]
    assert apply_limits([rule("free")], 4, firings, NOW) == ([rule("free")], {}) and asked == [4, 4]
