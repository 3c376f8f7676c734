"""The REST API: facts in, their fate out; every bad request named precisely, nothing stored."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import func, select

from hub import runtime
from hub.models import Fact
from hub.queue import FACTS_QUEUE, queue

ORDER = {
    "type": "order.placed",
    "source": "shop",
    "source_id": "order-1",
    "profile": {"email": "Ann@Example.com"},
    "data": {"total": 80},
}


def fact_count(app: Any) -> int:
    with runtime.of(app).db.session() as session:
        return session.scalar(select(func.count()).select_from(Fact))


def test_post_one_fact_is_stored_before_202(client: Any, auth: dict, app: Any) -> None:
    response = client.post("/api/v1/facts", json=ORDER, headers=auth)
    assert response.status_code == 202
    (result,) = response.json["facts"]
    assert result["status"] == "accepted"
    with runtime.of(app).db.session() as session:
        fact = session.get(Fact, result["id"])
        assert fact.status == "pending"
        assert fact.profile_ref == {"email": "ann@example.com"}
        assert fact.occurred_at is not None


def test_same_source_id_gives_one_fact(client: Any, auth: dict, app: Any) -> None:
    first = client.post("/api/v1/facts", json=ORDER, headers=auth).json["facts"][0]
    second = client.post("/api/v1/facts", json=ORDER, headers=auth).json["facts"][0]
    assert second == {"id": first["id"], "status": "duplicate"}
    batch = client.post("/api/v1/facts", json=[ORDER | {"source_id": "x"}] * 2, headers=auth)
    assert [f["status"] for f in batch.json["facts"]] == ["accepted", "duplicate"]
    assert fact_count(app) == 2


def test_batch_of_facts(client: Any, auth: dict, app: Any) -> None:
    facts = [ORDER | {"source_id": f"o{i}"} for i in range(100)]
    response = client.post("/api/v1/facts", json=facts, headers=auth)
    assert response.status_code == 202
    ids = [f["id"] for f in response.json["facts"]]
    assert len(set(ids)) == 100 and ids == sorted(ids)
    assert fact_count(app) == 100


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({k: v for k, v in ORDER.items() if k != "type"}, "type", "Field required"),
        ({k: v for k, v in ORDER.items() if k != "profile"}, "profile", "Field required"),
        (ORDER | {"type": "Order Placed"}, "type", "dotted lower-case"),
        (ORDER | {"profile": {}}, "profile", "needs an email or at least one external id"),
        (ORDER | {"profile": {"email": "nope"}}, "profile.email", "not a valid email"),
        (ORDER | {"occurred_at": "yesterday"}, "occurred_at", "datetime"),
        (ORDER | {"data": [1]}, "data", "dictionary"),
        (ORDER | {"colour": "red"}, "colour", "unknown field"),
        (ORDER | {"data": {"total": float("nan")}}, "data", "data.total is nan: NaN and"),
        (
            ORDER | {"profile": {"email": "a@b.nl", "fields": {"x": [1, float("inf")]}}},
            "profile.fields.x",
            "a number must be finite",
        ),
    ],
)
def test_bad_fact_names_field(
    client: Any, auth: dict, app: Any, body: dict, field: str, message: str
) -> None:
    good = ORDER | {"source_id": "good"}
    response = client.post("/api/v1/facts", json=[good, body], headers=auth)
    assert response.status_code == 400
    errors = response.json["errors"]
    assert any(
        e["index"] == 1 and e["field"] == field and message in e["message"] for e in errors
    ), errors
    assert all(e["index"] == 1 for e in errors)
    assert fact_count(app) == 0  # the valid fact of a rejected request is not stored either


def test_numbers_and_keys_come_back_as_sent(client: Any, auth: dict, app: Any) -> None:
    data = {"big": 2**70, "deep": {"n": -123456789012345678901234}, "pi": 3.14159, "é": "ü"}
    response = client.post("/api/v1/facts", json=ORDER | {"data": data}, headers=auth)
    with runtime.of(app).db.session() as session:
        assert session.get(Fact, response.json["facts"][0]["id"]).data == data


def test_posted_facts_wake_one_drain_job(client: Any, auth: dict, app: Any) -> None:
    redis = runtime.of(app).redis
    facts = queue(FACTS_QUEUE, redis)
    for n in range(20):  # a burst: one wake-up for all, sent by the process's waker thread
        assert client.post("/api/v1/facts", json=ORDER | {"source_id": f"w{n}"}, headers=auth)
    deadline = time.monotonic() + 5
    while facts.count == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert facts.job_ids and len(facts.job_ids) == 1
    assert facts.jobs[0].func_name == "hub.worker.drain.drain_pending"


def test_a_wake_up_due_at_exit_is_sent(client: Any, auth: dict, app: Any) -> None:
    facts = queue(FACTS_QUEUE, runtime.of(app).redis)
    client.post("/api/v1/facts", json=ORDER, headers=auth)
    runtime.of(app).waker.close()  # the process exits before its waker's interval is up
    assert facts.count == 1


def test_malformed_json(client: Any, auth: dict, app: Any) -> None:
    response = client.post(
        "/api/v1/facts", data='{"type": ', headers=auth | {"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json["error"] == "malformed_json"
    assert "line 1" in response.json["message"]
    assert fact_count(app) == 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer hub_wrong"}, {"Authorization": "Basic abc"}],
)
def test_wrong_or_missing_key_is_401(client: Any, app: Any, headers: dict) -> None:
    response = client.post("/api/v1/facts", json=ORDER, headers=headers)
    assert response.status_code == 401
    assert fact_count(app) == 0
    assert client.get("/api/v1/facts/1", headers=headers).status_code == 401


def test_oversized_body_is_413(client: Any, auth: dict, app: Any, settings: Any) -> None:
    padding = "x" * settings.max_body_bytes
    response = client.post("/api/v1/facts", json=ORDER | {"data": {"p": padding}}, headers=auth)
    assert response.status_code == 413
    assert fact_count(app) == 0


def test_too_many_facts_is_413(client: Any, auth: dict, app: Any, settings: Any) -> None:
    facts = [ORDER | {"source_id": str(i)} for i in range(settings.max_facts_per_request + 1)]
    response = client.post("/api/v1/facts", json=facts, headers=auth)
    assert response.status_code == 413
    assert str(settings.max_facts_per_request) in response.json["message"]
    assert fact_count(app) == 0


def test_get_unknown_fact_and_profile(client: Any, auth: dict) -> None:
    assert client.get("/api/v1/facts/999", headers=auth).status_code == 404
    assert client.get("/api/v1/profiles?email=nobody@example.com", headers=auth).status_code == 404
    assert client.get("/api/v1/profiles", headers=auth).status_code == 400


def test_a_facts_actions_say_what_they_did_not_just_that_they_ran(
    client: Any, auth: dict, app: Any, hub_runtime: Any, rules_dir: Any
) -> None:
    from tests.conftest import run_jobs
    from tests.rules.test_language import use_rules

    use_rules(
        hub_runtime,
        rules_dir,
        """
rules:
  - name: welcome
    when: {fact: signup.done}
    then:
      - update_profile: {set: {plan: free}}
      - send_mail: {template: welcome, subject: Welcome}
""",
    )
    opted_in = {"status": "subscribed", "proof": "signed up with the newsletter box ticked"}
    signup = {"type": "signup.done", "profile": {"email": "zoe@example.com", "consent": opted_in}}
    gone = {**signup, "profile": {"email": "zed@example.com", "status": "unsubscribed"}}
    first = client.post("/api/v1/facts", json=[signup, gone], headers=auth).json["facts"]
    before = client.get(f"/api/v1/facts/{first[0]['id']}", headers=auth).json
    assert (before["status"], before["firings"]) == ("pending", [])
    from hub.worker.drain import drain_pending

    drain_pending()
    (firing,) = client.get(f"/api/v1/facts/{first[0]['id']}", headers=auth).json["firings"]
    assert [j["status"] for j in firing["jobs"]] == ["queued", "queued"]  # in their batch jobs
    run_jobs(hub_runtime)
    again = client.post("/api/v1/facts", json={**signup, "source_id": "2"}, headers=auth).json
    drain_pending()
    run_jobs(hub_runtime)

    def jobs(fact_id: int) -> list[tuple[str, str]]:
        (f,) = client.get(f"/api/v1/facts/{fact_id}", headers=auth).json["firings"]
        return [(j["status"], j["outcome"]) for j in f["jobs"]]

    (sent_status, sent_outcome) = jobs(first[0]["id"])[1]
    assert jobs(first[0]["id"])[0] == ("finished", "applied (changed plan)")
    assert sent_status == "finished" and sent_outcome.startswith("sent <")
    assert jobs(first[1]["id"])[1][0] == "skipped"  # no consent: not "finished"
    assert "unsubscribed" in jobs(first[1]["id"])[1][1]
    assert jobs(again["facts"][0]["id"])[0] == ("finished", "applied (nothing changed)")
