"""``/healthz``: 200 when the database and Redis answer and the facts are worked, else 503.

It names the service that does not answer, and says whether a worker was seen in RQ's
worker registry: facts that wait with no worker to evaluate them are an outage too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from rq.utils import utcformat
from sqlalchemy import update

from hub import runtime
from hub.app import create_app
from hub.config import Settings
from hub.models import Fact
from hub.public.health import WORKER_SEEN_SECONDS
from hub.runtime import Runtime
from hub.times import utcnow
from hub.worker.process import HubWorker, build_worker
from tests.worker.test_evaluate import order, post


def test_healthz_reports_both_services(client: Any) -> None:
    """No worker and nothing pending: 200, the workers check says none was seen."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "database": "ok",
        "redis": "ok",
        "workers": "none seen",
        "workers_seen": 0,
        "worker_last_seen_seconds": None,
        "oldest_pending_fact_seconds": None,
    }


def test_healthz_needs_no_key_and_answers_json(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize(
    ("down", "override"),
    [
        ("database", {"database_url": "postgresql+psycopg://nobody@127.0.0.1:9/none"}),
        ("redis", {"redis_url": "redis://127.0.0.1:9/0"}),
    ],
)
@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_healthz_is_503_naming_the_service_that_is_down(
    settings: Settings, down: str, override: dict[str, str]
) -> None:
    app = create_app(settings.with_overrides(**override))
    try:
        response = app.test_client().get("/healthz")
    finally:
        runtime.of(app).close()
    assert response.status_code == 503
    body = response.json
    assert body is not None and body["status"] == "unavailable"
    assert body[down].startswith("error: ")
    up = ({"database", "redis"} - {down}).pop()
    assert body[up] == "ok"


@pytest.fixture
def registered(hub_runtime: Runtime) -> Iterator[HubWorker]:
    """The hub's worker, registered in RQ's worker registry as ``hub worker`` does at start."""
    worker = build_worker(hub_runtime)
    worker.register_birth()
    yield worker
    worker.register_death()


def test_pending_facts_with_no_worker_seen_are_503(client: Any, hub_runtime: Runtime) -> None:
    post(hub_runtime, order())
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "unavailable"
    assert body["database"] == body["redis"] == "ok"  # the services answer: the workers do not
    assert body["workers"].startswith("error: ") and "no worker" in body["workers"]
    assert body["workers_seen"] == 0 and body["worker_last_seen_seconds"] is None
    assert body["oldest_pending_fact_seconds"] is not None


def test_a_registered_worker_is_seen_and_makes_pending_facts_healthy(
    client: Any, hub_runtime: Runtime, registered: HubWorker
) -> None:
    post(hub_runtime, order())
    response = client.get("/healthz")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "ok" and body["workers"] == "ok"
    assert body["workers_seen"] >= 1
    assert 0 <= body["worker_last_seen_seconds"] < 5


def test_a_worker_that_died_or_went_silent_is_not_seen(
    client: Any, hub_runtime: Runtime, registered: HubWorker
) -> None:
    """Only a recent registration counts: a stale heartbeat or a recorded death is no worker."""
    post(hub_runtime, order())
    stale = utcnow() - timedelta(seconds=WORKER_SEEN_SECONDS + 30)
    hub_runtime.redis.hset(registered.key, "last_heartbeat", utcformat(stale))
    assert client.get("/healthz").status_code == 503
    registered.heartbeat()  # renewed: seen again
    assert client.get("/healthz").json["workers"] == "ok"
    registered.register_death()
    body = client.get("/healthz").json
    assert body["workers_seen"] == 0 and body["workers"].startswith("error: ")


def test_a_burst_worker_is_no_longer_seen_once_it_has_worked_the_facts(
    client: Any, hub_runtime: Runtime, settings: Settings
) -> None:
    """A real work loop: after it, nothing waits, and the worker left the registry."""
    from hub.facts.ingest import notify

    post(hub_runtime, order())
    notify(settings, hub_runtime.redis)
    assert build_worker(hub_runtime).work(burst=True, logging_level="WARNING") is True
    body = client.get("/healthz").json
    assert body["oldest_pending_fact_seconds"] is None
    assert body["workers"] == "none seen" and body["workers_seen"] == 0


def test_oldest_pending_fact_seconds_is_the_age_of_the_oldest_pending_fact(
    client: Any, hub_runtime: Runtime, registered: HubWorker
) -> None:
    old, new = post(hub_runtime, order(), order(email="bob@example.com"))
    with hub_runtime.db.session() as session:
        session.execute(
            update(Fact).where(Fact.id == old).values(received_at=utcnow() - timedelta(minutes=5))
        )
    age = client.get("/healthz").json["oldest_pending_fact_seconds"]
    assert 300 <= age < 310
    with hub_runtime.db.session() as session:  # evaluated: the newer one is the oldest waiting
        session.execute(update(Fact).where(Fact.id == old).values(status="evaluated"))
    assert client.get("/healthz").json["oldest_pending_fact_seconds"] < 10
