"""Storing facts: in order, all or nothing, a duplicate delivery answered with the first id."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import StatementError

from hub.facts.ingest import Waker, store_facts
from hub.facts.schema import FactIn
from hub.models import Fact, Profile
from hub.queue import FACTS_QUEUE, queue
from hub.runtime import Runtime
from tests.conftest import run_jobs


def fact(source_id: str | None = None, source: str = "shop", **data: Any) -> FactIn:
    return FactIn(
        type="order.placed",
        source=source,
        source_id=source_id,
        profile={"email": "ann@example.com"},
        data=data,
    )


def count(rt: Runtime) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(Fact))


def test_results_are_in_order_with_duplicates_within_one_call(hub_runtime: Runtime) -> None:
    results = store_facts(
        hub_runtime.db,
        [fact("a"), fact(None), fact("a"), fact("b"), fact(None), fact("a", source="crm")],
    )
    a, plain1, a_again, b, plain2, crm_a = results
    assert [r.status for r in results] == [
        "accepted", "accepted", "duplicate", "accepted", "accepted", "accepted",
    ]  # fmt: skip
    assert a_again.id == a.id
    assert len({a.id, plain1.id, b.id, plain2.id, crm_a.id}) == 5  # another source: another fact
    assert count(hub_runtime) == 5


def test_a_later_delivery_gets_the_first_id_and_changes_nothing(hub_runtime: Runtime) -> None:
    (first,) = store_facts(hub_runtime.db, [fact("o-1", total=80)])
    again = store_facts(hub_runtime.db, [fact("o-2"), fact("o-1", total=99)])
    assert again[1].id == first.id and again[1].status == "duplicate"
    assert again[0].status == "accepted"
    with hub_runtime.db.session() as session:
        assert session.get(Fact, first.id).data == {"total": 80}


def test_a_failing_fact_stores_none_of_its_call(hub_runtime: Runtime) -> None:
    # the keyed facts are written first; an unkeyed one the database cannot take comes after
    unstorable = FactIn.model_construct(**fact(None).__dict__ | {"data": {"x": {1, 2}}})
    with pytest.raises((TypeError, StatementError), match="not JSON serializable"):
        store_facts(hub_runtime.db, [fact("k-1"), fact(None), unstorable])
    assert count(hub_runtime) == 0


def test_in_the_callers_session_facts_commit_or_roll_back_with_its_change(
    hub_runtime: Runtime,
) -> None:
    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), hub_runtime.db.session() as session:
        session.add(Profile(email="ann@example.com"))
        store_facts(hub_runtime.db, [fact("s-1")], session=session)
        raise Abandon
    with hub_runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Profile)) == 0
    assert count(hub_runtime) == 0
    with hub_runtime.db.session() as session:
        session.add(Profile(email="ann@example.com"))
        (stored,) = store_facts(hub_runtime.db, [fact("s-1")], session=session)
    with hub_runtime.db.session() as session:
        assert session.get(Fact, stored.id).source_id == "s-1"
        assert session.scalar(select(func.count()).select_from(Profile)) == 1


def test_a_burst_after_a_worker_started_gets_its_own_wake_up(hub_runtime: Runtime) -> None:
    facts = queue(FACTS_QUEUE, hub_runtime.redis)
    waker = Waker(hub_runtime.settings, lambda: hub_runtime.redis, interval=0.05)
    try:
        for burst in range(2):
            for _ in range(10):
                waker.wake()
            assert _wait(lambda: facts.count == 1), f"burst {burst}: {facts.count} jobs"
            run_jobs(hub_runtime)  # the drain job clears the wake flag as it starts
            assert facts.count == 0
    finally:
        waker.close()


def test_close_with_nothing_due_sends_nothing_and_a_wake_after_close_goes_out_at_once(
    hub_runtime: Runtime,
) -> None:
    facts = queue(FACTS_QUEUE, hub_runtime.redis)
    waker = Waker(hub_runtime.settings, lambda: hub_runtime.redis, interval=60)
    waker.close()
    assert facts.count == 0
    waker.wake()  # a request that finishes while the process shuts down
    assert facts.count == 1


def _wait(predicate: Any, timeout: float = 5) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(predicate())
