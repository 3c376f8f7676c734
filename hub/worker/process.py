"""The hub's RQ worker and cron scheduler processes (``hub worker``, ``hub scheduler``).

Both outlive Redis: when it goes away they wait, try again with a capped backoff (logged once
when the outage begins and once when it ends, see :mod:`hub.worker.outage`) and go on where
they were. RQ's own work loop already retries a failed dequeue; it exits on any other Redis
error (a timeout, a heartbeat, a job's bookkeeping), and RQ's cron scheduler exits on the
first. :class:`HubWorker` turns each of these into a wait; :func:`run_worker` and
:func:`run_scheduler` start the loop again if it still ends without being asked to stop.

A job that was running when Redis went away is left in RQ's started registry; its lease
runs out a minute later and the registry's cleanup (the worker's maintenance or the sweep)
retries it. The jobs are idempotent (the action ledger), so a job whose result could not be
recorded runs again to no effect. Database outages need nothing here: a job that meets one
fails, its facts stay ``pending`` and its actions ``planned``, and the sweep re-drives them.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from rq import Queue, SimpleWorker, worker_registration
from rq.cron import CronScheduler
from rq.exceptions import StopRequested
from rq.job import Job
from rq.worker import WorkerStatus

from hub import runtime
from hub.actions import ACTIONS
from hub.config import Settings
from hub.integrations.pulls import PULL_QUEUE, schedule_pulls
from hub.queue import ALL_QUEUES, FACTS_QUEUE
from hub.runtime import Runtime
from hub.worker.heartbeat import JobHeartbeat
from hub.worker.outage import REDIS_DOWN, Outage, wait_for_redis
from hub.worker.sweep import sweep

log = logging.getLogger(__name__)

# A running job's lease in the started registry is renewed every JOB_MONITORING_INTERVAL
# seconds and lasts HEARTBEAT_TTL: a job whose worker was killed is abandoned at most
# HEARTBEAT_TTL after the kill, and retried at the next cleanup (the sweep's, every
# ``sweep_interval_seconds``, or a worker's maintenance, every MAINTENANCE_INTERVAL).
JOB_MONITORING_INTERVAL = 10
HEARTBEAT_TTL = 60
MAINTENANCE_INTERVAL = 30
# An idle worker renews its registration every WORKER_TTL - 15 seconds (RQ's blocking dequeue
# timeout) and its key lasts WORKER_TTL + 60: a worker that died leaves RQ's worker registry,
# and /healthz, within two minutes, and an idle one runs its maintenance at least that often.
WORKER_TTL = 60
PUBSUB_POLL_SECONDS = 1.0  # the command channel's poll: a stop waits at most this for it
RESTART_DELAY = 5.0  # before starting a work loop again that ended unasked
ORPHAN_CHECK_SECONDS = 1.0  # a scheduler following a parent sees it gone within this


class RedisUnavailable(Exception):  # noqa: N818 - RQ's loop must not see a redis error
    """Redis failed during a dequeue: raised instead of the error, out of RQ's retry loop."""


class HubQueue(Queue):
    """RQ's queue, whose blocking dequeue reports a lost Redis to :class:`HubWorker`.

    RQ's dequeue loop retries a connection error itself and logs each attempt; the hub's
    worker waits for Redis with one log line per outage instead.
    """

    @classmethod
    def dequeue_any(cls, *args: Any, **kwargs: Any) -> Any:  # noqa: D102 - as RQ's
        try:
            return super().dequeue_any(*args, **kwargs)
        except REDIS_DOWN as exc:
            raise RedisUnavailable(str(exc)) from exc


class HubWorker(SimpleWorker):
    """RQ's SimpleWorker (jobs run in this process), with job heartbeats and no Redis exit.

    - While a job runs, a thread renews its lease (:class:`JobHeartbeat`), so that a killed
      worker's job is abandoned within ``HEARTBEAT_TTL`` rather than its timeout plus a
      minute (what ``SimpleWorker`` gives).
    - Every Redis call of the work loop outside a job either waits for Redis (before a
      dequeue, a suspension check) or is skipped until the next round (heartbeats,
      maintenance); a job whose bookkeeping Redis refused is left to the registry cleanup.
    """

    queue_class = HubQueue

    def __init__(
        self,
        *args: Any,
        outage: Outage | None = None,
        keep_alive: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.outage = outage or Outage("Redis", logger=log)
        self.keep_alive = keep_alive

    # -- heartbeats ----------------------------------------------------------------------

    def subscribe(self) -> None:
        """RQ's subscription to its command channel, polled every second rather than every 60.

        redis-py (8.x) joins the pub/sub thread when RQ stops it, and the thread sits in a
        wait as long as its poll interval: with RQ's 60 s every worker stop (Ctrl-C, ``hub
        up`` stopping its children, a burst worker's end) took up to a minute.
        """
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=PUBSUB_POLL_SECONDS,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """A short lease, renewed by :class:`JobHeartbeat` while the job runs."""
        return HEARTBEAT_TTL

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run ``job`` here with a heartbeat; if Redis fails its bookkeeping, wait and go on."""
        execution = None
        try:
            execution = self.prepare_execution(job)
            with JobHeartbeat(
                self, job, execution, interval=self.job_monitoring_interval, outage=self.outage
            ):
                self.perform_job(job, queue, execution)
            self.set_state(WorkerStatus.IDLE)
        except REDIS_DOWN as exc:
            self.outage.failed(exc)
            log.warning(
                "job %s: its outcome could not be recorded; once Redis is back, its lease "
                "runs out and it is retried",
                job.id,
            )
            if execution is not None:
                self.executions.pop(execution.id, None)
            self._state = WorkerStatus.IDLE

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's worker heartbeat; one Redis refuses is reported and skipped."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
            return
        try:
            super().heartbeat(timeout)
        except REDIS_DOWN as exc:
            self.outage.failed(exc)

    # -- the work loop's other Redis calls -----------------------------------------------

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """RQ's dequeue, after Redis answers; a lost Redis is waited for, then dequeue again."""
        while True:
            self._wait_for_redis()
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except RedisUnavailable as exc:
                self.outage.failed(exc.__cause__ or exc)
            except REDIS_DOWN as exc:
                self.outage.failed(exc)

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's suspension check, after Redis answers."""
        while True:
            self._wait_for_redis()
            try:
                super().check_for_suspension(burst)
                return
            except REDIS_DOWN as exc:
                self.outage.failed(exc)

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance (registry cleanup, a dead scheduler started again), or next time.

        Then ``keep_alive``, if given: ``hub worker`` starts its cron scheduler again there.
        """
        try:
            super().run_maintenance_tasks()
        except REDIS_DOWN as exc:
            self.outage.failed(exc)
        if self.keep_alive is not None:
            try:
                self.keep_alive()
            except Exception:  # noqa: BLE001 - the worker goes on; it is tried again next time
                log.exception("keeping the worker's companion processes alive failed")

    def set_shutdown_requested_date(self) -> None:
        """Recorded in Redis if it answers: a stop asked for during an outage still stops."""
        try:
            super().set_shutdown_requested_date()
        except REDIS_DOWN as exc:
            self.outage.failed(exc)

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, pubsub_thread: Any) -> None:
        if isinstance(exc, REDIS_DOWN):
            self.outage.failed(exc)
            time.sleep(2.0)  # redis-py subscribes again once it reconnects
            return
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)

    def _wait_for_redis(self) -> None:
        if not self.outage.down:
            return
        if not wait_for_redis(self.connection, self.outage, stop=lambda: self._stop_requested):
            raise StopRequested()
        self._register_again()

    def _register_again(self) -> None:
        """Be in RQ's worker registry again: a Redis restarted without its data forgot us."""
        if self.birth_date is None or self.last_heartbeat is None:
            return
        try:
            with self.connection.pipeline() as pipe:
                pipe.hset(self.key, mapping=self.serialize())
                pipe.hset(self.key, "state", self.get_state())
                worker_registration.register(self, pipe)
                pipe.expire(self.key, self.worker_ttl + 60)
                pipe.execute()
        except REDIS_DOWN as exc:
            self.outage.failed(exc)


def build_worker(
    rt: Runtime, outage: Outage | None = None, keep_alive: Callable[[], None] | None = None
) -> HubWorker:
    """The worker of the facts, actions and mail queues, on ``rt``'s Redis."""
    return HubWorker(
        list(ALL_QUEUES),  # built as HubQueue by the worker
        connection=rt.redis,
        job_monitoring_interval=JOB_MONITORING_INTERVAL,
        maintenance_interval=MAINTENANCE_INTERVAL,
        worker_ttl=WORKER_TTL,
        outage=outage,
        keep_alive=keep_alive,
    )


def run_worker(
    settings: Settings,
    *,
    burst: bool = False,
    keep_alive: Callable[[], None] | None = None,
) -> bool:
    """Work the facts, actions and mail queues in this process (no fork per job).

    The rules are loaded before the first job, so an invalid rule set stops the worker at
    start with the file and line of every problem. A work loop that ends without a stop
    being asked for (Redis lost where RQ does not retry) is started again once Redis
    answers. ``keep_alive`` is called at each maintenance round (``hub worker`` starts its
    scheduler again there if it died). Returns whether any job was worked.
    """
    _log_to_stderr()
    rt = Runtime.build(settings, ACTIONS)
    runtime.install(rt)
    _ = rt.engine  # load and compile the rules now
    tune_gc()
    outage = Outage(f"Redis (worker {os.getpid()})", logger=log)
    worked = False
    while True:
        wait_for_redis(rt.redis, outage)
        worker = build_worker(rt, outage, keep_alive)
        try:
            worked = worker.work(burst=burst, with_scheduler=True, logging_level="INFO") or worked
        except REDIS_DOWN as exc:  # from RQ's teardown, after its loop ended
            outage.failed(exc)
        if burst or worker._stop_requested or worker._shutdown_requested_date:
            return worked
        log.warning("the work loop ended unasked; starting it again in %.0f s", RESTART_DELAY)
        time.sleep(RESTART_DELAY)


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


class HubCron(CronScheduler):
    """RQ's cron scheduler, which remembers a stop was asked for and can follow a parent."""

    def __init__(self, *args: Any, parent: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parent = parent
        self.stop_requested = False

    @property
    def orphaned(self) -> bool:
        """Whether the process this scheduler follows is gone (it was re-parented)."""
        return self.parent is not None and os.getppid() != self.parent

    def _request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_requested = True
        super()._request_stop(signum, frame)

    def calculate_sleep_interval(self) -> float:
        """RQ's sleep until the next due job, at most a second when following a parent.

        The parent is checked once a round: an orphan stops within a second, not at the
        next sweep (30 s by default).
        """
        interval = float(super().calculate_sleep_interval())
        return min(interval, ORPHAN_CHECK_SECONDS) if self.parent is not None else interval

    def enqueue_jobs(self) -> Any:
        """RQ's round of due jobs, unless the parent followed is gone: then stop."""
        if self.orphaned:
            self.stop_requested = True
            raise StopRequested()
        return super().enqueue_jobs()


def build_scheduler(rt: Runtime, parent: int | None = None) -> HubCron:
    """RQ's cron scheduler with the hub's jobs: the sweep and the connector pulls."""
    scheduler = HubCron(connection=rt.redis, logging_level=logging.INFO, parent=parent)
    scheduler.register(
        sweep,
        queue_name=FACTS_QUEUE,
        interval=rt.settings.sweep_interval_seconds,
        job_timeout=120,
        result_ttl=300,
    )
    scheduler.register(schedule_pulls, queue_name=PULL_QUEUE, interval=60, job_timeout=120)
    return scheduler


def run_scheduler(settings: Settings, *, parent: int | None = None) -> None:
    """Run RQ's cron scheduler: the sweep every ``sweep_interval_seconds``, pulls every minute.

    RQ's scheduler ends on the first Redis error; it is started again (its jobs' next runs
    counted from then) once Redis answers. It ends when asked to (SIGINT, SIGTERM), and, if
    ``parent`` is given, once that process is gone (a worker killed with SIGKILL leaves no
    scheduler behind).
    """
    _log_to_stderr()
    rt = Runtime.build(settings, ACTIONS)
    runtime.install(rt)
    outage = Outage(f"Redis (scheduler {os.getpid()})", logger=log)

    def orphaned() -> bool:
        return parent is not None and os.getppid() != parent

    try:
        while not orphaned():
            if not wait_for_redis(rt.redis, outage, stop=orphaned):
                return
            scheduler = build_scheduler(rt, parent)
            try:
                scheduler.start()
                return  # it returns only when asked to stop
            except REDIS_DOWN as exc:  # from its loop, or from its last words after a stop
                if scheduler.stop_requested:
                    return
                outage.failed(exc)
    except (StopRequested, KeyboardInterrupt):  # a signal while it waited for Redis
        return


def _log_to_stderr() -> None:
    """The hub's own log lines (outages, restarts) on stderr, as RQ writes its own."""
    hub_log = logging.getLogger("hub")
    if not hub_log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        hub_log.addHandler(handler)
        hub_log.setLevel(logging.INFO)
