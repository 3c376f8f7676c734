"""Simulation and reload: what the rules would do with a fact, with no side effect."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from hub.models import ActionRun, Fact, Message, Profile, RuleFiring
from hub.queue import ALL_QUEUES, queue
from hub.runtime import Runtime

CONSENT = {"status": "subscribed", "proof": "opted in at checkout"}
ORDER = {
    "type": "order.placed",
    "profile": {"email": "ann@example.com", "consent": CONSENT},
    "data": {"total": 80},
}


def counts(rt: Runtime) -> tuple[int, ...]:
    with rt.db.session() as s:
        rows = tuple(
            s.scalar(select(func.count()).select_from(m))
            for m in (Fact, Profile, RuleFiring, ActionRun, Message)
        )
    return rows + tuple(queue(q, rt.redis).count for q in ALL_QUEUES)


def test_simulate_tells_what_would_fire_and_why_not_with_no_side_effect(
    client: Any, auth: dict[str, str], hub_runtime: Runtime
) -> None:
    before = counts(hub_runtime)
    answer = client.post(
        "/api/v1/rules/simulate",
        json={
            "fact": {**ORDER, "type": "order.shipped", "data": {"country": "NL"}},
            "profile": {"status": "subscribed", "fields": {"first_name": "Ann"}},
            "now": "2026-02-01T10:00:00Z",
        },
        headers=auth,
    )
    assert answer.status_code == 200, answer.json
    body = answer.json
    fired = {f["rule"]: f for f in body["fired"]}
    assert set(fired) == {"tag-every-shopper", "ask-for-a-review"}
    (review,) = fired["ask-for-a-review"]["actions"]
    assert review["action"] == "send_mail" and review["delay_seconds"] == 7 * 86400
    assert review["run_at"] == "2026-02-08T10:00:00+00:00"
    assert review["unless"] == [
        "profile.status ne 'subscribed'",
        "history of order.refunded since the trigger: count gte 1",
    ]
    reasons = {n["rule"]: n["reason"] for n in body["not_fired"]}
    assert reasons["thank-you-for-your-order"] == (
        "fact type 'order.shipped' does not match 'order.placed'"
    )
    assert counts(hub_runtime) == before


def test_simulate_names_the_first_failing_condition(client: Any, auth: dict[str, str]) -> None:
    body = client.post(
        "/api/v1/rules/simulate", json={"fact": {**ORDER, "data": {"total": 20}}}, headers=auth
    ).json
    reasons = {n["rule"]: n["reason"] for n in body["not_fired"]}
    assert reasons["thank-you-for-your-order"] == "condition failed: data.total gte 50 (it is 20)"
    assert [f["rule"] for f in body["fired"]] == ["tag-every-shopper"]
