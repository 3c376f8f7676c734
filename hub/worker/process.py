"""The hub's RQ worker and cron scheduler processes (``hub worker``, ``hub scheduler``)."""

from __future__ import annotations

import gc
import logging

from rq import SimpleWorker
from rq.cron import CronScheduler

from hub import runtime
from hub.actions import ACTIONS
from hub.config import Settings
from hub.integrations.pulls import PULL_QUEUE, schedule_pulls
from hub.queue import ALL_QUEUES, FACTS_QUEUE, queue
from hub.runtime import Runtime
from hub.worker.sweep import sweep

# Short intervals so that a job held by a worker killed with SIGKILL is seen as abandoned and
# retried within two minutes (heartbeat TTL = monitoring interval + 60 s, checked at each
# maintenance run), not after RQ's default ten.
JOB_MONITORING_INTERVAL = 15
MAINTENANCE_INTERVAL = 30


def run_worker(settings: Settings, *, burst: bool = False) -> bool:
    """Work the facts, actions and mail queues in this process (no fork per job).

    The rules are loaded before the first job, so an invalid rule set stops the worker at
    start with the file and line of every problem.
    """
    rt = Runtime.build(settings, ACTIONS)
    runtime.install(rt)
    _ = rt.engine  # load and compile the rules now
    tune_gc()
    worker = SimpleWorker(
        [queue(name, rt.redis) for name in ALL_QUEUES],
        connection=rt.redis,
        job_monitoring_interval=JOB_MONITORING_INTERVAL,
        maintenance_interval=MAINTENANCE_INTERVAL,
    )
    return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


def tune_gc() -> None:
    """Fewer garbage collections in a worker process, none over what it holds from the start.

    Evaluating a batch of 500 facts allocates several hundred thousand short-lived containers
    (documents, rows, records); with CPython's default threshold (700) that is a collection
    every few hundred, and each older-generation one walks every object the process holds
    (imported modules, compiled rules, pools). Objects alive after start-up are frozen out of
    collection and the young generation is collected every 20,000 allocations: cycles are
    still collected, memory stays bounded, and evaluation spends about a tenth less time
    (docs/benchmarks.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def run_scheduler(settings: Settings) -> None:
    """Run RQ's cron scheduler: the sweep every ``sweep_interval_seconds``."""
    rt = Runtime.build(settings, ACTIONS)
    runtime.install(rt)
    scheduler = CronScheduler(connection=rt.redis, logging_level=logging.INFO)
    scheduler.register(
        sweep,
        queue_name=FACTS_QUEUE,
        interval=settings.sweep_interval_seconds,
        job_timeout=120,
        result_ttl=300,
    )
    scheduler.register(schedule_pulls, queue_name=PULL_QUEUE, interval=60, job_timeout=120)
    scheduler.start()
