"""The rule language end to end: real engine, real database, real Redis, real HTTP."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from hub.facts.ingest import store_facts
from hub.facts.schema import FactIn
from hub.models import Fact, Profile, RuleFiring
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from tests.conftest import run_jobs


def use_rules(rt: Runtime, rules_dir: Path, text: str) -> None:
    """Replace the shipped rules of this test's rule directory by ``text``."""
    for old in rules_dir.glob("*.yaml"):
        old.unlink()
    (rules_dir / "test.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    rt.set_engine(None)


def post(rt: Runtime, *facts: dict[str, Any]) -> list[int]:
    return [s.id for s in store_facts(rt.db, [FactIn.model_validate(f) for f in facts])]


def fact(type_: str, email: str = "ann@example.com", **data: Any) -> dict[str, Any]:
    return {"type": type_, "profile": {"email": email}, "data": data}


def settle(rt: Runtime, rounds: int = 20) -> None:
    """Evaluate and run jobs until nothing is pending (chains of hub facts included)."""
    for _ in range(rounds):
        drain_pending()
        run_jobs(rt)
        with rt.db.session() as s:
            if not s.scalar(select(func.count()).select_from(Fact).where(Fact.status == "pending")):
                return


def fired(rt: Runtime, fact_id: int | None = None) -> list[str]:
    with rt.db.session() as s:
        q = select(RuleFiring.rule_name).order_by(RuleFiring.id)
        if fact_id is not None:
            q = q.where(RuleFiring.fact_id == fact_id)
        return list(s.scalars(q))


def profile(rt: Runtime, email: str = "ann@example.com") -> Profile:
    with rt.db.session() as s:
        p = s.scalar(select(Profile).where(Profile.email == email))
        s.expunge(p)
        return p


OPERATORS = """
rules:
  - name: big
    when: {fact: order.placed, all: [data.total: {gt: 100}]}
    then: [{update_profile: {add_tags: [big]}}]
  - name: not-nl
    when: {fact: order.placed, all: [data.country: {not_in: [NL, BE]}]}
    then: [{update_profile: {add_tags: [abroad]}}]
  - name: has-coupon
    when: {fact: order.placed, all: [data.coupon: {exists: true}]}
    then: [{update_profile: {add_tags: [coupon]}}]
  - name: no-coupon
    when: {fact: order.placed, all: [data.coupon: {missing: true}]}
    then: [{update_profile: {add_tags: [nocoupon]}}]
  - name: vip-tag
    when: {fact: order.placed, all: [profile.tags: {contains: vip}]}
    then: [{update_profile: {add_tags: [seen-vip]}}]
  - name: sku-pattern
    when: {fact: order.placed, all: [data.sku: {matches: "AB-[0-9]+"}]}
    then: [{update_profile: {add_tags: [ab]}}]
  - name: either-or-none
    when:
      fact: order.*
      any: [data.total: {lt: 5}, data.rush: true]
      none: [profile.status: bounced]
    then: [{update_profile: {add_tags: [either]}}]
  - name: fresh-profile
    when: {fact: order.placed, all: [profile.created_at: {within: 1h}]}
    then: [{update_profile: {add_tags: [fresh]}}]
  - name: text-total-never-compares-with-a-number
    when: {fact: order.placed, all: [data.total: {gte: 0}]}
    then: [{update_profile: {add_tags: [numeric]}}]
"""


CASES = [
    (
        {"total": 150, "country": "DE", "sku": "AB-12"},
        {
            "big",
            "not-nl",
            "no-coupon",
            "sku-pattern",
            "fresh-profile",
            "text-total-never-compares-with-a-number",
        },
    ),
    (
        {"total": 3, "country": "NL", "coupon": "X", "sku": "AB-"},
        {
            "has-coupon",
            "either-or-none",
            "fresh-profile",
            "text-total-never-compares-with-a-number",
        },
    ),
    ({"total": "lots", "rush": True}, {"no-coupon", "either-or-none", "fresh-profile"}),
]


def test_operators_fire_what_they_say(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(hub_runtime, rules_dir, OPERATORS)
    facts = [fact("order.placed", f"p{i}@example.com", **data) for i, (data, _) in enumerate(CASES)]
    ids = post(hub_runtime, *facts)
    drain_pending()
    assert [set(fired(hub_runtime, fid)) for fid in ids] == [expected for _, expected in CASES]


def test_tags_and_limits_and_priority(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: first-order
            once_per_profile: true
            when: {fact: order.placed}
            then: [{update_profile: {add_tags: [vip]}}]
          - name: seen-vip
            when: {fact: order.placed, all: [profile.tags: {contains: vip}]}
            then: [{update_profile: {increment: {vip_orders: 1}}}]
          - name: fraud-stop
            priority: 100
            stop: true
            when: {fact: order.placed, all: [data.fraud: true]}
            then: [{update_profile: {add_tags: [fraud]}}]
        """,
    )
    first, second = post(hub_runtime, fact("order.placed"), fact("order.placed"))
    settle(hub_runtime)
    assert fired(hub_runtime, first) == ["first-order"]
    assert fired(hub_runtime, second) == []  # vip is set by a job after the first evaluation
    (third,) = post(hub_runtime, fact("order.placed"))
    (fraud,) = post(hub_runtime, fact("order.placed", fraud=True))
    settle(hub_runtime)
    assert fired(hub_runtime, third) == ["seen-vip"]  # once_per_profile held first-order back
    assert fired(hub_runtime, fraud) == ["fraud-stop"]  # priority first, stop ends the list
    p = profile(hub_runtime)
    assert p.fields == {"vip_orders": 1} and sorted(p.tags) == ["fraud", "vip"]


def test_history_condition_counts_past_facts(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: third-big-order
            when:
              fact: order.placed
              all:
                - history:
                    fact: order.placed
                    within: 30d
                    where: [data.total: {gte: 100}]
                    count: {gte: 2}
            then: [{update_profile: {add_tags: [loyal]}}]
          - name: first-ever
            when:
              fact: order.placed
              all: [history: {fact: order.*, count: 0}]
            then: [{update_profile: {add_tags: [first]}}]
        """,
    )
    ids = [post(hub_runtime, fact("order.placed", total=t))[0] for t in (150, 50, 120, 10)]
    settle(hub_runtime)
    assert [fired(hub_runtime, i) for i in ids] == [["first-ever"], [], [], ["third-big-order"]]


def test_every_matching_rule_fires_once_and_never_twice(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: a
            when: {fact: order.*}
            then: [{update_profile: {increment: {a: 1}}}]
          - name: b
            when: {fact: order.placed, all: [history: {fact: order.placed, count: 0}]}
            then: [{update_profile: {increment: {b: 1}}}]
          - name: c
            when: {fact: order.placed, all: [fact.occurred_at: {within: 1d}]}
            then: [{update_profile: {increment: {c: 1}}}]
        """,
    )
    (fid,) = post(hub_runtime, fact("order.placed"))
    settle(hub_runtime)
    with hub_runtime.db.session() as s:
        s.execute(Fact.__table__.update().values(status="pending"))
    settle(hub_runtime)
    assert sorted(fired(hub_runtime, fid)) == ["a", "b", "c"]
    assert profile(hub_runtime).fields == {"a": 1, "b": 1, "c": 1}


def test_a_new_contact_and_fields_a_source_changes_are_facts_too(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: welcome-new
            when: {fact: profile.created}
            then: [{update_profile: {add_tags: [new]}}]
          - name: moved
            when: {fact: profile.updated, all: [data.changed: {contains: city}]}
            then: [{update_profile: {add_tags: [moved]}}]
        """,
    )
    with_city = {
        **fact("order.placed"),
        "profile": {"email": "ann@example.com", "fields": {"city": "Delft"}},
    }
    post(hub_runtime, with_city)
    settle(hub_runtime)
    post(hub_runtime, with_city)  # same city: nothing changed
    settle(hub_runtime)
    assert fired(hub_runtime) == ["welcome-new"]
    post(
        hub_runtime,
        {**with_city, "profile": {"email": "ann@example.com", "fields": {"city": "Oslo"}}},
    )
    settle(hub_runtime)
    assert fired(hub_runtime) == ["welcome-new", "moved"]
    assert sorted(profile(hub_runtime).tags) == ["moved", "new"]
    with hub_runtime.db.session() as s:
        created = s.scalar(select(Fact).where(Fact.type == "profile.created"))
        assert (created.source, created.data["caused_by"]["depth"]) == ("hub", 1)
