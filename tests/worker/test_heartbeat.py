"""A running job's lease is short and renewed, so a killed worker's job is soon abandoned."""

from __future__ import annotations

import time
from datetime import timedelta

from rq import Queue, get_current_job
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.utils import now

from hub.runtime import Runtime
from hub.worker.heartbeat import JobHeartbeat
from hub.worker.outage import Outage
from hub.worker.process import HEARTBEAT_TTL, HubWorker


def lease_left(seconds: float) -> list[tuple[float, float]]:
    """RQ job: sample (elapsed, seconds left on its own lease) while it runs ``seconds``."""
    job = get_current_job()
    assert job is not None
    registry = StartedJobRegistry(job.origin, connection=job.connection)
    samples = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        for _member, score in job.connection.zrange(registry.key, 0, -1, withscores=True):
            samples.append((time.monotonic() - start, score - time.time()))
        time.sleep(0.2)
    return samples


def test_a_running_jobs_lease_is_short_and_renewed_while_it_runs(hub_runtime: Runtime) -> None:
    q = Queue("heartbeat-test", connection=hub_runtime.redis)
    job = q.enqueue(lease_left, 3.0, job_timeout=600)
    worker = HubWorker([q.name], connection=hub_runtime.redis, job_monitoring_interval=1)
    assert worker.work(burst=True, logging_level="WARNING") is True
    job.refresh()
    samples = job.return_value()
    assert samples, "the job saw no lease of its own"
    # SimpleWorker's lease would be the job's timeout plus a minute (660 s), never renewed
    assert all(left <= HEARTBEAT_TTL + 1 for _at, left in samples)
    late = [left for at, left in samples if at > 1.5]
    # renewed about every second (one interval, one sampling period and scheduling slack)
    assert late and min(late) > HEARTBEAT_TTL - 3, samples
    assert not StartedJobRegistry(q.name, connection=hub_runtime.redis).get_job_ids()


def test_the_beats_stop_once_a_job_overran_its_timeout(hub_runtime: Runtime) -> None:
    q = Queue("heartbeat-test", connection=hub_runtime.redis)
    job = Job.create(lease_left, args=(0,), connection=hub_runtime.redis, timeout=1)
    job.started_at = now() - timedelta(seconds=10)
    worker = HubWorker([q.name], connection=hub_runtime.redis)
    beat = JobHeartbeat(worker, job, None, interval=0.05, outage=Outage("Redis"), grace=1)  # type: ignore[arg-type]
    with beat:
        time.sleep(0.5)
        assert not beat._thread.is_alive()  # it ended on its own, beating never
    assert beat.beats == 0
