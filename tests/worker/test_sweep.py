"""The periodic sweep: nothing stored waits forever."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from rq.job import Job, JobStatus
from sqlalchemy import select

from hub import runtime
from hub.models import ActionRun, Fact, Message
from hub.queue import ACTIONS_QUEUE, ALL_QUEUES, FACTS_QUEUE, queue
from hub.runtime import Runtime
from hub.times import utcnow
from hub.worker.drain import drain_pending, evaluate_next_batch
from hub.worker.sweep import GRACE_SECONDS, recover_actions, sweep
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


def planned(rt: Runtime) -> list[str]:
    with rt.db.session() as s:
        return sorted(s.scalars(select(ActionRun.job_id).where(ActionRun.status == "planned")))


def later(seconds: int = GRACE_SECONDS + 1) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def test_a_batch_commits_without_redis_and_the_sweep_enqueues_its_actions(
    hub_runtime: Runtime,
) -> None:
    post(hub_runtime, order())
    redis = hub_runtime.redis
    hub_runtime.redis = Redis.from_url("redis://127.0.0.1:1")  # Redis goes away mid-drain
    try:
        assert evaluate_next_batch(hub_runtime) == 1
    finally:
        hub_runtime.redis = redis
    assert count(hub_runtime, Fact, Fact.status == "evaluated") == 1  # committed all the same
    waiting = planned(hub_runtime)
    assert waiting  # its actions are in the outbox, with no job anywhere
    assert recover_actions(hub_runtime) == (0, 0)  # within the grace period: left alone
    assert recover_actions(hub_runtime, later()) == (len(waiting), 0)
    run_jobs(hub_runtime)
    assert planned(hub_runtime) == []
    assert count(hub_runtime, Message, Message.status == "sent") == 1


def test_actions_whose_jobs_redis_lost_are_carried_out_once(hub_runtime: Runtime) -> None:
    post(hub_runtime, order(), order(email="bob@example.com"))
    drain_pending()
    keys = planned(hub_runtime)
    assert keys
    assert recover_actions(hub_runtime, later()) == (0, 0)  # their batch job is queued: live
    hub_runtime.redis.flushdb()  # Redis restarted without persistence
    assert recover_actions(hub_runtime, later()) == (len(keys), 0)
    assert recover_actions(hub_runtime, later()) == (0, 0)  # enqueued once, not per sweep
    run_jobs(hub_runtime)
    assert planned(hub_runtime) == []
    with hub_runtime.db.session() as s:
        mails = list(s.scalars(select(Message)))
    assert sorted(m.to_address for m in mails) == ["ann@example.com", "bob@example.com"]
    assert {m.status for m in mails} == {"sent"}
    hub_runtime.redis.flushdb()
    assert recover_actions(hub_runtime, later()) == (0, 0)  # settled: never enqueued again


def test_actions_of_a_batch_in_the_failed_registry_are_enqueued_alone(
    hub_runtime: Runtime,
) -> None:
    post(hub_runtime, order())
    drain_pending()
    batches = {j.id for name in ALL_QUEUES for j in queue(name, hub_runtime.redis).jobs}
    assert batches
    for job_id in batches:  # as after its fourth abandonment
        job = Job.fetch(job_id, connection=hub_runtime.redis)
        job.set_status(JobStatus.FAILED)
        queue(job.origin, hub_runtime.redis).remove(job)
    keys = planned(hub_runtime)
    assert recover_actions(hub_runtime, later()) == (len(keys), 0)
    assert {Job.fetch(k, connection=hub_runtime.redis).get_status() for k in keys} == {"queued"}
    run_jobs(hub_runtime)
    assert planned(hub_runtime) == []
    assert count(hub_runtime, Message, Message.status == "sent") == 1


def test_actions_of_a_batch_taken_off_its_queue_and_never_started_are_enqueued_alone(
    hub_runtime: Runtime,
) -> None:
    """A worker popped the batch and lost Redis before marking it started (issue 11 faults).

    Its job says ``queued`` but is in no queue and no registry, also after a restart from
    the AOF: nobody will run it, so its actions are lost as if Redis had lost the job.
    """
    post(hub_runtime, order())
    drain_pending()
    batches = {j.id for name in ALL_QUEUES for j in queue(name, hub_runtime.redis).jobs}
    assert batches
    for job_id in batches:  # what the worker's BLPOP did; its status stays 'queued'
        job = Job.fetch(job_id, connection=hub_runtime.redis)
        hub_runtime.redis.lrem(queue(job.origin, hub_runtime.redis).key, 0, job_id)
        assert job.get_status() == "queued"
    keys = planned(hub_runtime)
    assert recover_actions(hub_runtime, later()) == (len(keys), 0)
    run_jobs(hub_runtime)
    assert planned(hub_runtime) == []
    assert count(hub_runtime, Message, Message.status == "sent") == 1


def test_an_action_whose_own_job_gave_up_is_settled_failed_with_its_error(
    hub_runtime: Runtime,
) -> None:
    post(hub_runtime, order())
    drain_pending()
    (key, *_) = planned(hub_runtime)
    for name in ALL_QUEUES:
        queue(name, hub_runtime.redis).empty()
    job = queue(ACTIONS_QUEUE, hub_runtime.redis).enqueue("hub.queue.no_such_function", job_id=key)
    run_jobs(hub_runtime)
    assert Job.fetch(job.id, connection=hub_runtime.redis).get_status() == "failed"
    requeued, failed = recover_actions(hub_runtime, later())
    assert failed == 1
    with hub_runtime.db.session() as s:
        run = s.get(ActionRun, key)
        assert run.status == "failed"
        assert "no_such_function" in run.outcome
