"""Evaluation: every matching rule fires once per fact, actions run once, nothing is lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy import func, select, update

from hub import runtime
from hub.facts.ingest import store_facts
from hub.facts.schema import FactIn
from hub.models import Fact, Message, Profile, RuleFiring
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from hub.worker.pending import lock_pending
from hub.worker.sweep import sweep
from tests.conftest import run_jobs


def post(rt: Runtime, *facts: dict) -> list[int]:
    stored = store_facts(rt.db, [FactIn.model_validate(f) for f in facts])
    return [s.id for s in stored]


def order(email: str = "ann@example.com", total: int = 80, **extra: Any) -> dict:
    return {"type": "order.placed", "profile": {"email": email}, "data": {"total": total}} | extra


def count(rt: Runtime, model: Any, *where: Any) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_two_matching_rules_both_fire(hub_runtime: Runtime) -> None:
    (fact_id,) = post(hub_runtime, order())
    drain_pending()
    with hub_runtime.db.session() as session:
        names = set(
            session.scalars(select(RuleFiring.rule_name).where(RuleFiring.fact_id == fact_id))
        )
    assert names == {"thank-you-for-your-order", "tag-every-shopper"}
    run_jobs(hub_runtime)
    with hub_runtime.db.session() as session:
        profile = session.scalar(select(Profile))
        assert profile.fields == {"customer": True}
        assert sorted(profile.tags) == ["buyer", "shopper"]
    assert count(hub_runtime, Message, Message.status == "sent") == 1
    outbox = list(hub_runtime.settings.outbox_dir.glob("*.eml"))
    assert len(outbox) == 1
    assert "Thanks for your order" in outbox[0].read_text()


def test_condition_that_fails_does_not_fire(hub_runtime: Runtime) -> None:
    (fact_id,) = post(hub_runtime, order(total=10))
    drain_pending()
    with hub_runtime.db.session() as session:
        names = set(
            session.scalars(select(RuleFiring.rule_name).where(RuleFiring.fact_id == fact_id))
        )
    assert names == {"tag-every-shopper"}


def test_evaluating_again_enqueues_nothing_twice(hub_runtime: Runtime) -> None:
    (fact_id,) = post(hub_runtime, order())
    drain_pending()
    run_jobs(hub_runtime)
    with hub_runtime.db.session() as session:  # an operator asks for a second evaluation
        session.execute(update(Fact).values(status="pending"))
    drain_pending()
    run_jobs(hub_runtime)
    assert count(hub_runtime, RuleFiring) == 2
    assert count(hub_runtime, Message) == 1
    assert len(list(hub_runtime.settings.outbox_dir.glob("*.eml"))) == 1


def test_a_job_run_twice_acts_once(hub_runtime: Runtime) -> None:
    from hub.actions.send_mail import send_mail
    from hub.actions.update_profile import update_profile

    post(hub_runtime, order())
    drain_pending()
    run_jobs(hub_runtime)
    with hub_runtime.db.session() as session:
        firing = session.scalar(
            select(RuleFiring).where(RuleFiring.rule_name == "thank-you-for-your-order")
        )
    update_job, mail_job = firing.jobs
    assert (
        update_profile(update_job["job_id"], firing.fact_id, firing.profile_id, {"add_tags": ["x"]})
        == "already applied"
    )
    assert send_mail(
        mail_job["job_id"],
        firing.fact_id,
        firing.profile_id,
        firing.rule_name,
        {"template": "thank-you", "subject": "s"},
    ).startswith("already")
    assert count(hub_runtime, Message) == 1


def test_no_mail_to_unsubscribed_profile(hub_runtime: Runtime) -> None:
    post(hub_runtime, order(profile={"email": "bob@example.com", "status": "unsubscribed"}))
    drain_pending()
    run_jobs(hub_runtime)
    with hub_runtime.db.session() as session:
        profile = session.scalar(select(Profile))
        assert profile.status == "unsubscribed"
    # the rule's own condition (profile.status: subscribed) already keeps it from firing
    assert count(hub_runtime, Message) == 0
    assert list(hub_runtime.settings.outbox_dir.glob("*.eml")) == []


def test_send_mail_never_mails_a_profile_that_is_not_subscribed(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    (rules_dir / "orders.yaml").write_text(
        "rules:\n"
        "  - name: careless\n"
        "    when: {fact: order.placed}\n"
        "    then:\n"
        "      - send_mail: {template: thank-you, subject: hi}\n"
    )
    hub_runtime.set_engine(None)
    post(hub_runtime, order(profile={"email": "bob@example.com", "status": "bounced"}))
    drain_pending()
    run_jobs(hub_runtime)
    with hub_runtime.db.session() as session:
        message = session.scalar(select(Message))
    assert message.status == "skipped" and "bounced" in message.error
    assert list(hub_runtime.settings.outbox_dir.glob("*.eml")) == []


def test_profiles_found_by_email_case_insensitively_and_by_external_id(
    hub_runtime: Runtime,
) -> None:
    post(
        hub_runtime,
        order(email="Ann@Example.com"),
        order(email="ann@example.COM", total=1),
        {
            "type": "order.placed",
            "profile": {"email": "ann@example.com", "external_ids": {"shop": "7"}},
        },
        {"type": "order.placed", "profile": {"external_ids": {"shop": "7"}}},
    )
    drain_pending()
    assert count(hub_runtime, Profile) == 1
    with hub_runtime.db.session() as session:
        assert set(session.scalars(select(Fact.profile_id))) == {session.scalar(select(Profile.id))}


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


def test_facts_stored_while_redis_is_down_are_picked_up_by_the_sweep(
    hub_runtime: Runtime, client: Any, auth: dict, app: Any
) -> None:
    runtime.of(app).redis = Redis.from_url("redis://127.0.0.1:1")  # nothing listens there
    response = client.post("/api/v1/facts", json=order(), headers=auth)
    assert response.status_code == 202  # stored: the caller may forget it
    assert count(hub_runtime, Fact, Fact.status == "pending") == 1
    sweep()
    run_jobs(hub_runtime)
    assert count(hub_runtime, Fact, Fact.status == "evaluated") == 1
    assert count(hub_runtime, Message, Message.status == "sent") == 1


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


def test_fields_a_source_sends_are_on_the_profile_before_rules_run(hub_runtime: Runtime) -> None:
    post(hub_runtime, order(profile={"email": "dee@example.com", "fields": {"first_name": "Dee"}}))
    drain_pending()
    run_jobs(hub_runtime)
    with hub_runtime.db.session() as session:
        profile = session.scalar(select(Profile))
        assert profile.fields == {"first_name": "Dee", "customer": True}
    (mail,) = hub_runtime.settings.outbox_dir.glob("*.eml")
    assert "Thanks for your order, Dee" in mail.read_text()
