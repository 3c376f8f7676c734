"""The pending facts a worker takes: oldest first, locked, skipped by other workers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from hub.models import ActionRun, Fact, Profile, RuleFiring
from hub.queue import request_evaluation
from hub.runtime import Runtime
from hub.worker.pending import in_turn, lock_pending
from tests.conftest import hub_env, start_hub, stop_hub, wait_until
from tests.rules.test_language import fact, use_rules
from tests.worker.test_evaluate import OPTED_IN, order, post


def test_pending_facts_are_taken_oldest_first(hub_runtime: Runtime) -> None:
    ids = post(hub_runtime, *[order(email=f"p{i}@example.com", total=i) for i in range(5)])
    with hub_runtime.db.session() as s:
        s.execute(update(Fact).where(Fact.id == ids[1]).values(status="evaluated"))
        s.execute(update(Fact).where(Fact.id == ids[3]).values(status="failed"))
    with hub_runtime.db.session() as s:
        taken = lock_pending(s)
        assert [f.id for f in taken] == [ids[0], ids[2], ids[4]]
        first = taken[0]
        assert (first.type, first.profile_ref, first.data) == (
            "order.placed",
            {"email": "p0@example.com", "consent": OPTED_IN},
            {"total": 0},
        )
        assert first.evaluated_at is None
    with hub_runtime.db.session() as s:
        assert [f.id for f in lock_pending(s, limit=2)] == [ids[0], ids[2]]
    with hub_runtime.db.session() as s:
        assert [f.id for f in lock_pending(s, ids=[ids[4], ids[1], ids[0]])] == [ids[0], ids[4]]


def test_a_fact_sent_back_to_pending_says_it_was_evaluated_before(hub_runtime: Runtime) -> None:
    (fact_id,) = post(hub_runtime, order())
    with hub_runtime.db.session() as s:
        s.execute(update(Fact).values(status="evaluated", evaluated_at=Fact.received_at))
        s.execute(update(Fact).values(status="pending"))
    with hub_runtime.db.session() as s:
        (again,) = lock_pending(s)
        assert again.id == fact_id and again.evaluated_at is not None


@pytest.mark.parametrize("backend", ["production"])  # PostgreSQL: SQLite has one writer
def test_a_second_worker_skips_the_facts_another_holds(hub_runtime: Runtime) -> None:
    ids = post(hub_runtime, order(), order(email="b@example.com"), order(email="c@example.com"))
    first = hub_runtime.db.sessions()
    second = hub_runtime.db.sessions()
    try:
        assert [f.id for f in lock_pending(first, limit=2)] == ids[:2]
        second.execute(text("SET LOCAL lock_timeout = '5s'"))  # waiting would fail, not hang
        assert [f.id for f in lock_pending(second)] == ids[2:]
        second.rollback()
        first.rollback()  # the first worker's transaction ends: its facts can be taken
        assert [f.id for f in lock_pending(second)] == ids
    finally:
        first.close()
        second.close()


def test_a_contacts_later_facts_wait_while_another_worker_holds_an_earlier_one(
    hub_runtime: Runtime, backend: str
) -> None:
    if backend != "production":
        pytest.skip("SQLite has one writer: no two workers hold batches at once")
    ann1, bob1, ann2, cy1 = post(
        hub_runtime,
        order(email="ann@example.com"),
        order(email="bob@example.com"),
        order(email="ANN@example.com"),  # the same contact, as another source spells it
        order(email="cy@example.com"),
    )
    with hub_runtime.db.session() as first:
        held = lock_pending(first, limit=1)  # worker one holds ann's first fact
        assert [f.id for f in held] == [ann1]
        with hub_runtime.db.session() as second:
            taken = lock_pending(second, limit=10)
            assert [f.id for f in taken] == [bob1, ann2, cy1]
            ready, waiting = in_turn(second, taken)
            assert [f.id for f in ready] == [bob1, cy1] and waiting == 1
    with hub_runtime.db.session() as s:  # worker one committed ann1 evaluated
        s.execute(update(Fact).where(Fact.id == ann1).values(status="evaluated"))
    with hub_runtime.db.session() as s:
        ready, waiting = in_turn(s, lock_pending(s, limit=10))
        assert [f.id for f in ready] == [bob1, ann2, cy1] and waiting == 0


def test_a_contacts_facts_wait_for_an_earlier_one_not_in_the_batch(hub_runtime: Runtime) -> None:
    ann1, ann2 = post(hub_runtime, order(), order())
    with hub_runtime.db.session() as s:
        ready, waiting = in_turn(s, lock_pending(s, ids=[ann2]))
        assert ready == [] and waiting == 1
    with hub_runtime.db.session() as s:
        ready, waiting = in_turn(s, lock_pending(s, ids=[ann1, ann2]))
        assert [f.id for f in ready] == [ann1, ann2] and waiting == 0


SLOW_COMMIT = """
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_sleep(0.2); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON rule_firings
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.rule_name = 'count-visits')
EXECUTE FUNCTION slow_commit();
"""


def test_two_workers_on_the_same_contacts_give_what_one_worker_would(
    hub_runtime: Runtime, rules_dir: Path, backend: str, tmp_path: Path
) -> None:
    """History rules fire once per contact, increments and merged fields are all kept."""
    if backend != "production":
        pytest.skip("SQLite has one writer: no two workers evaluate at once")
    use_rules(
        hub_runtime,
        rules_dir,
        """
rules:
  - name: first-visit
    when:
      fact: page.viewed
      all: [{history: {fact: page.viewed, count: 0}}]
    then: [{update_profile: {add_tags: [first]}}]
  - name: fifth-visit
    when:
      fact: page.viewed
      all: [{history: {fact: page.viewed, count: 4}}]
    then: [{update_profile: {add_tags: [fifth]}}]
  - name: count-visits
    when: {fact: page.viewed}
    then: [{update_profile: {increment: {visits: 1}}}]
""",
    )
    people = [f"v{i}@example.com" for i in range(8)]
    visits = [
        {**fact("page.viewed", email=e), "profile": {"email": e, "fields": {f"seen{n}": n}}}
        for e in people  # a contact's visits one after the other: they span two batches
        for n in range(5)
    ]
    post(hub_runtime, *visits)
    with hub_runtime.db.session() as s:  # a slow commit: batches overlap, as under load
        s.execute(text(SLOW_COMMIT))
    env = hub_env(replace(hub_runtime.settings, fact_batch_size=3))
    log = tmp_path / "workers.log"
    workers = [start_hub(["worker", "--no-scheduler"], env, log) for _ in range(2)]
    try:
        request_evaluation(hub_runtime.settings, hub_runtime.redis)

        def settled() -> bool:
            with hub_runtime.db.session() as s:
                waiting = s.scalar(
                    select(func.count()).where(
                        (Fact.status == "pending") & (Fact.type == "page.viewed")
                    )
                )
                planned = s.scalar(select(func.count()).where(ActionRun.status == "planned"))
            assert all(w.poll() is None for w in workers), log.read_text()[-3000:]
            return waiting == 0 and planned == 0

        assert wait_until(settled, 90), log.read_text()[-3000:]
    finally:
        for w in workers:
            stop_hub(w)
    with hub_runtime.db.session() as s:
        fired = s.execute(
            select(RuleFiring.rule_name, func.count()).group_by(RuleFiring.rule_name)
        ).all()
        profiles = list(s.scalars(select(Profile).where(Profile.email.in_(people))))
    assert dict(fired) == {"first-visit": 8, "fifth-visit": 8, "count-visits": 40}
    for p in profiles:
        assert p.fields == {"visits": 5, **{f"seen{n}": n for n in range(5)}}, p.email
        assert sorted(p.tags) == ["fifth", "first"]
