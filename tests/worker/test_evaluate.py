"""Evaluation: every matching rule fires once per fact, actions run once, nothing is lost."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from hub.facts.ingest import store_facts
from hub.facts.schema import FactIn
from hub.models import Fact, Message, Profile, RuleFiring
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from tests.conftest import run_jobs


def post(rt: Runtime, *facts: dict) -> list[int]:
    stored = store_facts(rt.db, [FactIn.model_validate(f) for f in facts])
    return [s.id for s in stored]


OPTED_IN = {"status": "subscribed", "proof": "ticked 'Send me news' at checkout"}


def order(email: str = "ann@example.com", total: int = 80, **extra: Any) -> dict:
    """An order of a contact who gave marketing consent (the shipped thank-you rule needs it)."""
    profile = {"email": email, "consent": OPTED_IN}
    return {"type": "order.placed", "profile": profile, "data": {"total": total}} | extra


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


def test_fields_a_source_sends_are_on_the_profile_before_rules_run(hub_runtime: Runtime) -> None:
    post(
        hub_runtime,
        order(
            profile={
                "email": "dee@example.com",
                "fields": {"first_name": "Dee"},
                "consent": OPTED_IN,
            }
        ),
    )
    drain_pending()
    run_jobs(hub_runtime)
    with hub_runtime.db.session() as session:
        profile = session.scalar(select(Profile))
        assert profile.fields == {"first_name": "Dee", "customer": True}
    (mail,) = hub_runtime.settings.outbox_dir.glob("*.eml")
    assert "Thanks for your order, Dee" in mail.read_text()
