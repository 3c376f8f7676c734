"""Draining pending facts: batch by batch, a held batch skipped, a bad fact failing alone."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from hub.models import Fact, RuleFiring
from hub.queue import FACTS_QUEUE, queue
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from hub.worker.pending import lock_pending
from tests.analysis.test_simulate import ORDER
from tests.rules.test_language import fired, use_rules
from tests.worker.test_evaluate import count, order, post


def test_a_batch_held_by_a_worker_is_skipped_and_taken_up_once_it_dies(
    hub_runtime: Runtime,
) -> None:
    post(hub_runtime, order(), order(email="b@example.com"), order(email="c@example.com"))
    dying = hub_runtime.db.sessions()  # another worker, mid-batch: it holds two facts
    held = lock_pending(dying, limit=2)
    assert len(held) == 2
    taken = 0
    if not hub_runtime.db.is_sqlite:  # (SQLite has one writer at a time: the others wait)
        taken = drain_pending()
        assert taken == 1  # the third; the held ones are skipped, not waited for
        assert count(hub_runtime, Fact, Fact.status == "pending") == 2
    dying.connection().invalidate()  # the worker dies: its connection closes mid-transaction
    dying.close()
    assert taken + drain_pending() == 3
    assert count(hub_runtime, Fact, Fact.status == "evaluated") == 3
    assert count(hub_runtime, RuleFiring) == 6  # two rules per fact, once each


def test_a_fact_that_cannot_be_evaluated_fails_alone(hub_runtime: Runtime) -> None:
    good, bad = post(hub_runtime, order(), order(email="c@example.com"))
    with hub_runtime.db.session() as session:  # corrupt one stored fact behind the API's back
        session.execute(update(Fact).where(Fact.id == bad).values(profile_ref={"email": None}))
    assert drain_pending() == 2  # the batch fails, then each fact is evaluated alone
    with hub_runtime.db.session() as session:
        assert session.get(Fact, good).status == "evaluated"
        failed = session.get(Fact, bad)
        assert failed.status == "failed" and failed.error


def test_batches_are_evaluated_in_one_job(hub_runtime: Runtime) -> None:
    post(hub_runtime, *[order(email=f"p{i}@example.com") for i in range(120)])
    assert drain_pending() == 120
    assert count(hub_runtime, Fact, Fact.status == "evaluated") == 120
    assert count(hub_runtime, RuleFiring) == 240
    assert drain_pending() == 0  # nothing is left pending


QUIET = """
rules:
  - name: unrelated
    when: {fact: never.happens}
    then: [{update_profile: {add_tags: [never]}}]
"""


def test_a_full_batch_wakes_another_worker(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(hub_runtime, rules_dir, QUIET)
    drains = queue(FACTS_QUEUE, hub_runtime.redis)
    size = hub_runtime.settings.fact_batch_size
    post(hub_runtime, *[order(email=f"p{i}@example.com") for i in range(size - 1)])
    assert drain_pending() == size - 1
    assert drains.count == 0  # a short batch: nothing more was waiting
    post(hub_runtime, *[order(email=f"q{i}@example.com") for i in range(size + 1)])
    assert drain_pending() == size + 1
    assert [j.func_name for j in drains.jobs] == ["hub.worker.drain.drain_pending"]
    assert count(hub_runtime, Fact, Fact.status == "pending") == 0


def test_each_drain_uses_the_rule_files_as_they_are_now(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(hub_runtime, rules_dir, QUIET)
    (first,) = post(hub_runtime, order())
    drain_pending()
    (rules_dir / "more.yaml").write_text(
        "rules:\n  - name: added\n    when: {fact: order.placed}\n"
        "    then: [{update_profile: {add_tags: [added]}}]\n"
    )
    (second,) = post(hub_runtime, order())
    drain_pending()
    (rules_dir / "broken.yaml").write_text("rules:\n  - name: broken\n    when: {fact: 1}\n")
    (third,) = post(hub_runtime, order())
    drain_pending()  # an invalid change: the last valid rules go on
    assert [fired(hub_runtime, f) for f in (first, second, third)] == [[], ["added"], ["added"]]
    assert "broken.yaml" in (hub_runtime.rules_error() or "")


def test_a_worker_picks_up_a_valid_change_and_keeps_the_last_valid_set(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    drain_pending()
    first = hub_runtime.engine.ruleset.version
    orders = rules_dir / "orders.yaml"
    text = orders.read_text()
    orders.write_text(
        text.replace("name: tag-every-shopper", "name: tag-every-shopper\n    prio: 1")
    )
    post(hub_runtime, ORDER)
    drain_pending()
    assert hub_runtime.engine.ruleset.version == first  # invalid: still running
    error = hub_runtime.redis.get("hub:rules:error").decode()
    assert f"{orders}:" in error and "unknown key 'prio'" in error
    orders.write_text(text.replace("data.total: {gte: 50}", "data.total: {gte: 500}"))
    (fid,) = post(hub_runtime, {**ORDER, "profile": {"email": "bo@example.com"}})
    drain_pending()
    assert hub_runtime.engine.ruleset.version != first
    assert hub_runtime.redis.get("hub:rules:error") is None
    with hub_runtime.db.session() as s:
        firing = s.scalars(select(RuleFiring).where(RuleFiring.fact_id == fid)).all()
    assert [(f.rule_name, f.ruleset_version) for f in firing] == [
        ("tag-every-shopper", hub_runtime.engine.ruleset.version)
    ]
