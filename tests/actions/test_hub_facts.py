"""Facts the hub raises itself: stored only if a rule listens (``emit``: always), a chain of them
stops at its bound, a worker is woken once they are committed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.actions.hub_facts import MAX_CHAIN_DEPTH, ChainStopped, NotRaised, hub_fact, raise_fact
from hub.facts.own import ProfileUpdated
from hub.models import ActionRun, Fact
from hub.queue import FACTS_QUEUE, queue, wake_key
from hub.runtime import Runtime
from tests.rules.test_language import fact, post, settle, use_rules

LISTENS = """
rules:
  - name: on-update
    when: {fact: profile.updated}
    then: [{update_profile: {add_tags: [updated]}}]
"""
DEAF = """
rules:
  - name: unrelated
    when: {fact: never.happens}
    then: [{update_profile: {add_tags: [never]}}]
"""
ANN = {"email": "ann@example.com", "fields": {}, "tags": [], "status": "subscribed"}


def cause(rt: Runtime, depth: int | None = None) -> dict[str, Any]:
    """A stored fact as actions see their cause, itself raised at ``depth`` of a chain."""
    data = {} if depth is None else {"caused_by": {"fact": None, "rule": "r", "depth": depth}}
    (fact_id,) = post(rt, {**fact("order.placed"), "data": data})
    with rt.db.session() as s:
        return s.get(Fact, fact_id).as_dict()


def raise_in_transaction(rt: Runtime, what: Any, cause_fact: dict[str, Any], key: str) -> str:
    with rt.db.session() as s:
        return raise_fact(
            rt,
            what,
            profile=ANN,
            source_id=key,
            cause_fact=cause_fact,
            rule_name="r",
            session=s,
        )


def stored(rt: Runtime, fact_type: str) -> list[Fact]:
    with rt.db.session() as s:
        found = list(s.scalars(select(Fact).where(Fact.type == fact_type).order_by(Fact.id)))
        s.expunge_all()
        return found


def test_a_fact_no_rule_listens_to_is_not_raised(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(hub_runtime, rules_dir, DEAF)
    the_cause = cause(hub_runtime)
    with pytest.raises(NotRaised, match="no profile.updated raised: no rule listens to it"):
        hub_fact(
            hub_runtime,
            fact_type="profile.updated",
            profile=ANN,
            data={"changed": ["city"]},
            source_id="job-1",
            cause_fact=the_cause,
            rule_name="r",
        )
    said = raise_in_transaction(hub_runtime, ProfileUpdated(changed=["city"]), the_cause, "job-1")
    assert said == "no profile.updated raised: no rule listens to it"
    assert stored(hub_runtime, "profile.updated") == []


def test_a_fact_a_rule_listens_to_is_stored_with_its_cause(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(hub_runtime, rules_dir, LISTENS)
    the_cause = cause(hub_runtime)
    said = raise_in_transaction(hub_runtime, ProfileUpdated(changed=["city"]), the_cause, "job-1")
    (raised,) = stored(hub_runtime, "profile.updated")
    assert said == f"raised profile.updated (fact {raised.id}, accepted)"
    assert (raised.source, raised.source_id, raised.status) == ("hub", "job-1", "pending")
    assert raised.data == {
        "changed": ["city"],
        "caused_by": {"fact": the_cause["id"], "rule": "r", "depth": 1},
    }
    # the job run again raises no second fact
    again = raise_in_transaction(hub_runtime, ProfileUpdated(changed=["city"]), the_cause, "job-1")
    assert again == f"raised profile.updated (fact {raised.id}, duplicate)"
    assert len(stored(hub_runtime, "profile.updated")) == 1


def test_explicit_facts_are_stored_though_no_rule_listens(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(hub_runtime, rules_dir, DEAF)
    the_cause = cause(hub_runtime)
    said = raise_in_transaction(hub_runtime, ("order.counted", {"n": 2}), the_cause, "job-1")
    (raised,) = stored(hub_runtime, "order.counted")
    assert said == f"raised order.counted (fact {raised.id}, accepted)"
    assert raised.data == {"n": 2, "caused_by": {"fact": the_cause["id"], "rule": "r", "depth": 1}}


def test_a_profile_without_email_or_external_id_raises_nothing(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(hub_runtime, rules_dir, LISTENS)
    with pytest.raises(NotRaised, match="neither email nor external id"):
        hub_fact(
            hub_runtime,
            fact_type="order.counted",
            profile={"email": None, "external_ids": {}, "fields": {}},
            data={},
            source_id="job-1",
            cause_fact=cause(hub_runtime),
            rule_name="r",
            explicit=True,
        )


def test_a_chain_stops_at_its_depth_bound_and_the_stop_is_recorded_once(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(hub_runtime, rules_dir, LISTENS)
    last = cause(hub_runtime, depth=MAX_CHAIN_DEPTH - 1)
    raise_in_transaction(hub_runtime, ("order.counted", {}), last, "job-last")
    (raised,) = stored(hub_runtime, "order.counted")
    assert raised.data["caused_by"]["depth"] == MAX_CHAIN_DEPTH  # the bound itself is raised
    too_deep = cause(hub_runtime, depth=MAX_CHAIN_DEPTH)
    with pytest.raises(ChainStopped, match=f"would be fact number {MAX_CHAIN_DEPTH + 1}"):
        hub_fact(
            hub_runtime,
            fact_type="order.counted",
            profile=ANN,
            data={},
            source_id="job-stop",
            cause_fact=too_deep,
            rule_name="r",
            explicit=True,
        )
    for _ in range(2):  # the job run twice records the stop once
        said = raise_in_transaction(hub_runtime, ("order.counted", {}), too_deep, "job-stop")
        assert said.startswith("chain stopped: order.counted would be fact number")
    assert len(stored(hub_runtime, "order.counted")) == 1
    with hub_runtime.db.session() as s:
        stops = [(r.job_id, r.fact_id) for r in s.scalars(select(ActionRun))]
    assert stops == [("job-stop:stopped", too_deep["id"])]


def test_a_worker_is_woken_once_the_raised_fact_is_committed(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(hub_runtime, rules_dir, DEAF)
    the_cause = cause(hub_runtime)
    redis, drains = hub_runtime.redis, queue(FACTS_QUEUE, hub_runtime.redis)
    redis.delete(wake_key(hub_runtime.settings))
    with pytest.raises(RuntimeError), hub_runtime.db.session() as s:
        raise_fact(
            hub_runtime,
            ("order.counted", {}),
            profile=ANN,
            source_id="job-1",
            cause_fact=the_cause,
            rule_name="r",
            session=s,
        )
        raise RuntimeError("the action fails after raising its fact")
    assert stored(hub_runtime, "order.counted") == [] and drains.count == 0
    with hub_runtime.db.session() as s:
        raise_fact(
            hub_runtime,
            ("order.counted", {}),
            profile=ANN,
            source_id="job-1",
            cause_fact=the_cause,
            rule_name="r",
            session=s,
        )
        assert drains.count == 0  # not before the commit: a worker would find nothing
        assert s.scalar(select(func.count()).select_from(Fact)) == 2
    assert drains.count == 1
    assert [j.func_name for j in drains.jobs] == ["hub.worker.drain.drain_pending"]


def test_hub_facts_nobody_listens_to_are_not_stored(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: tag
            when: {fact: order.placed}
            then: [{update_profile: {add_tags: [x]}}]
        """,
    )
    post(hub_runtime, fact("order.placed"))
    settle(hub_runtime)
    with hub_runtime.db.session() as s:
        assert list(s.scalars(select(Fact.type))) == ["order.placed"]
