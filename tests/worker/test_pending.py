"""The pending facts a worker takes: oldest first, locked, skipped by other workers."""

from __future__ import annotations

import pytest
from sqlalchemy import text, update

from hub.models import Fact
from hub.runtime import Runtime
from hub.worker.pending import lock_pending
from tests.worker.test_evaluate import order, post


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
            {"email": "p0@example.com"},
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
