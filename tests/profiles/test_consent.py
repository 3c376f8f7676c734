"""Consent is never invented: profiles start unconfirmed, statements are kept with their proof."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hub.models import ConsentEvent, ConsentOutcome, Message, MessageStatus, Profile
from hub.profiles.consent import Statement, decide
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from tests.conftest import run_jobs
from tests.worker.test_evaluate import post

SUBSCRIBE = {"status": "subscribed", "proof": "shop newsletter box ticked"}
OPT_IN = SUBSCRIBE | {"explicit": True, "proof": "shop: subscriber status changed to 1"}
WITHDRAW = {"status": "unsubscribed", "proof": "shop: subscriber status 3"}


def _fact(email: str = "ann@example.com", consent: dict | None = None, **profile: Any) -> dict:
    ref: dict[str, Any] = {"email": email, **profile}
    if consent is not None:
        ref["consent"] = consent
    return {"type": "order.placed", "source": "shop", "profile": ref, "data": {"total": 80}}


def _profile(rt: Runtime, email: str = "ann@example.com") -> Profile:
    with rt.db.session() as session:
        found = session.scalar(select(Profile).where(Profile.email == email))
        assert found is not None
        session.expunge(found)
        return found


def _ledger(rt: Runtime) -> list[tuple[str, str, str, str]]:
    with rt.db.session() as session:
        rows = session.scalars(select(ConsentEvent).order_by(ConsentEvent.id))
        return [(r.stated, r.status_before, r.status_after, r.outcome) for r in rows]


@pytest.mark.parametrize(
    ("before", "stated", "explicit", "after", "outcome"),
    [
        ("unconfirmed", "subscribed", False, "subscribed", "applied"),
        ("unsubscribed", "subscribed", False, "unsubscribed", "ignored"),
        ("bounced", "subscribed", False, "bounced", "ignored"),
        ("unsubscribed", "subscribed", True, "subscribed", "applied"),
        ("subscribed", "unsubscribed", False, "unsubscribed", "applied"),
        ("unconfirmed", "unsubscribed", False, "unsubscribed", "applied"),
        ("bounced", "unsubscribed", True, "bounced", "ignored"),
        ("subscribed", "subscribed", False, "subscribed", "unchanged"),
    ],
)
def test_what_a_statement_does(
    before: str, stated: str, explicit: bool, after: str, outcome: str
) -> None:
    decision = decide(before, Statement(stated=stated, source="t", proof="p", explicit=explicit))
    assert (decision.after, decision.outcome.value) == (after, outcome)
    assert (decision.reason is not None) == (outcome == ConsentOutcome.IGNORED.value)


def test_a_profile_created_without_a_statement_is_unconfirmed_and_gets_no_marketing_mail(
    hub_runtime: Runtime,
) -> None:
    post(hub_runtime, _fact())
    drain_pending()
    run_jobs(hub_runtime)
    assert _profile(hub_runtime).status == "unconfirmed"
    assert _ledger(hub_runtime) == []
    with hub_runtime.db.session() as session:  # the shipped thank-you mail is marketing
        sent = session.scalars(select(Message).where(Message.status == MessageStatus.SENT.value))
        assert list(sent) == []


def test_stated_consent_is_applied_and_kept_with_its_proof(hub_runtime: Runtime) -> None:
    post(hub_runtime, _fact(consent=SUBSCRIBE | {"ip": "192.0.2.7", "evidence": {"form": "a"}}))
    drain_pending()
    assert _profile(hub_runtime).status == "subscribed"
    with hub_runtime.db.session() as session:
        (event,) = session.scalars(select(ConsentEvent))
        assert (event.source, event.proof, event.ip) == ("shop", SUBSCRIBE["proof"], "192.0.2.7")
        assert event.evidence == {"form": "a"}
        assert event.fact_id is not None


def test_a_plain_sync_never_resubscribes_but_an_explicit_opt_in_does(hub_runtime: Runtime) -> None:
    post(hub_runtime, _fact(consent=SUBSCRIBE))
    post(hub_runtime, _fact(consent=WITHDRAW))
    post(hub_runtime, _fact(consent=SUBSCRIBE))  # the shop's stale flag, synced again
    drain_pending()
    assert _profile(hub_runtime).status == "unsubscribed"
    post(hub_runtime, _fact(consent=OPT_IN))
    drain_pending()
    assert _profile(hub_runtime).status == "subscribed"
    assert _ledger(hub_runtime) == [
        ("subscribed", "unconfirmed", "subscribed", "applied"),
        ("unsubscribed", "subscribed", "unsubscribed", "applied"),
        ("subscribed", "unsubscribed", "unsubscribed", "ignored"),
        ("subscribed", "unsubscribed", "subscribed", "applied"),
    ]


def test_the_older_status_field_states_consent_too(hub_runtime: Runtime) -> None:
    post(hub_runtime, _fact(status="unsubscribed"))
    post(hub_runtime, _fact(status="subscribed"))
    drain_pending()
    assert _profile(hub_runtime).status == "unsubscribed"
    assert [e[3] for e in _ledger(hub_runtime)] == ["applied", "ignored"]


def test_a_fact_that_may_not_create_a_profile_creates_none(hub_runtime: Runtime) -> None:
    post(hub_runtime, {"type": "shop.gone", "profile": {"email": "x@example.com", "create": False}})
    drain_pending()
    with hub_runtime.db.session() as session:
        assert session.scalar(select(Profile)) is None


def test_the_api_creates_unconfirmed_and_records_what_a_caller_states(
    client: Any, auth: dict[str, str]
) -> None:
    made = client.post("/api/v1/profiles", json={"email": "bo@example.com"}, headers=auth)
    assert made.status_code == 201 and made.json["status"] == "unconfirmed"
    pid = made.json["id"]
    stated = client.post(f"/api/v1/profiles/{pid}/consent", json=SUBSCRIBE, headers=auth)
    assert stated.status_code == 200
    assert stated.json["consent"]["outcome"] == "applied"
    assert stated.json["profile"]["status"] == "subscribed"
    client.post(f"/api/v1/profiles/{pid}/unsubscribe", headers=auth)
    again = client.post(f"/api/v1/profiles/{pid}/consent", json=SUBSCRIBE, headers=auth)
    assert again.json["consent"]["outcome"] == "ignored"
    assert "explicit" in again.json["consent"]["reason"]
    ledger = client.get(f"/api/v1/profiles/{pid}/consent", headers=auth).json["consent"]
    assert [e["outcome"] for e in ledger] == ["ignored", "applied", "applied"]  # newest first
    timeline = client.get(f"/api/v1/profiles/{pid}/timeline", headers=auth).json["events"]
    assert [e["kind"] for e in timeline].count("consent") == 3


def test_bad_consent_is_refused_naming_the_field(client: Any, auth: dict[str, str]) -> None:
    made = client.post("/api/v1/profiles", json={"email": "cy@example.com"}, headers=auth)
    pid = made.json["id"]
    answer = client.post(
        f"/api/v1/profiles/{pid}/consent", json={"status": "subscribed", "proof": ""}, headers=auth
    )
    assert answer.status_code == 400
    assert answer.json["field"] == "proof"
    assert client.get(f"/api/v1/profiles/{pid}", headers=auth).json["status"] == "unconfirmed"
