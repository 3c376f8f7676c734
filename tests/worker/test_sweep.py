"""The periodic sweep: nothing stored waits forever."""

from __future__ import annotations

from typing import Any

from redis import Redis

from hub import runtime
from hub.models import Fact, Message
from hub.queue import FACTS_QUEUE, queue
from hub.runtime import Runtime
from hub.worker.sweep import sweep
from tests.conftest import run_jobs
from tests.worker.test_evaluate import count, order, post


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


def test_the_sweep_wakes_one_worker_only_when_facts_are_pending(hub_runtime: Runtime) -> None:
    drains = queue(FACTS_QUEUE, hub_runtime.redis)
    assert sweep()["pending"] == 0
    assert drains.count == 0
    post(hub_runtime, order())  # stored without waking a worker
    assert sweep()["pending"] == 1
    assert sweep()["pending"] == 1
    assert [j.func_name for j in drains.jobs] == ["hub.worker.drain.drain_pending"]  # one wakes
    run_jobs(hub_runtime)
    assert count(hub_runtime, Fact, Fact.status == "pending") == 0
    assert sweep()["pending"] == 0
