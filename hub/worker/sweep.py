"""The periodic sweep: nothing stored may wait forever.

Run by RQ's ``CronScheduler`` every ``sweep_interval_seconds``:

- cleans the started registries, so that a job held by a worker that died is handed to its
  retries (a worker's jobs keep a short heartbeat: see :mod:`hub.worker.process`);
- wakes a worker for pending facts (stored while Redis was down, or left by a worker that died
  mid-batch: its transaction rolled back, so they are pending again);
- recovers planned actions whose job is gone: Redis lost it (restarted without persistence,
  flushed), the worker died between the batch's commit and the enqueue, or the batch job that
  carried it went to the failed registry. Such an action is enqueued again alone, under its
  key; the action ledger makes it act once even if the old job turns up after all. An action
  whose own job failed for good (its retries exhausted) is settled ``failed``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import exists, select, update

from hub import runtime
from hub.models import ActionRun, ActionStatus, Fact, FactStatus
from hub.queue import ALL_QUEUES, queue, request_evaluation
from hub.runtime import Runtime
from hub.times import utcnow
from hub.worker.dispatch import Lost, requeue

log = logging.getLogger(__name__)

# A planned action is looked at once it has been due this long: time for the batch that
# planned it to enqueue it after its commit, and for a worker to pick it up.
GRACE_SECONDS = 30
PAGE = 1000  # planned actions looked at per query
MAX_PER_SWEEP = 20_000  # and per sweep: the rest waits for the next one
LIVE = frozenset({"queued", "started", "scheduled", "deferred"})  # RQ statuses of a job to come


def sweep() -> dict[str, int]:
    """RQ job: clean the started registries, wake a drain, recover lost actions."""
    rt = runtime.current()
    for name in ALL_QUEUES:
        StartedJobRegistry(queue=queue(name, rt.redis)).cleanup()
    with rt.db.session() as session:
        pending = session.scalar(select(exists().where(Fact.status == FactStatus.PENDING.value)))
    if pending:
        request_evaluation(rt.settings, rt.redis)
    requeued, failed = recover_actions(rt)
    return {"pending": int(bool(pending)), "requeued": requeued, "failed": failed}


def recover_actions(rt: Runtime, now: datetime | None = None) -> tuple[int, int]:
    """Enqueue again the planned actions due for a while that no live job carries.

    Returns how many were enqueued again and how many were settled ``failed``.
    """
    cutoff = (now or utcnow()) - timedelta(seconds=GRACE_SECONDS)
    requeued = failed = seen = 0
    after: tuple[datetime, str] | None = None
    while seen < MAX_PER_SWEEP:
        rows = _planned(rt, cutoff, after)
        if not rows:
            break
        seen += len(rows)
        after = (rows[-1].due_at, rows[-1].job_id)
        lost, finished = _without_live_job(rt, rows)
        if finished:
            failed += _settle_finished(rt, finished)
        if lost:
            requeue(rt, lost)
            requeued += len(lost)
        if len(rows) < PAGE:
            break
    if requeued or failed:
        log.warning(
            "sweep: %d planned action(s) had no job and were enqueued again, %d settled failed",
            requeued,
            failed,
        )
    return requeued, failed


def _planned(rt: Runtime, cutoff: datetime, after: tuple[datetime, str] | None) -> list[Any]:
    query = (
        select(
            ActionRun.job_id,
            ActionRun.action,
            ActionRun.fact_id,
            ActionRun.profile_id,
            ActionRun.rule_name,
            ActionRun.queue,
            ActionRun.params,
            ActionRun.unless,
            ActionRun.delayed,
            ActionRun.due_at,
            ActionRun.batch_job,
        )
        .where(ActionRun.status == ActionStatus.PLANNED.value, ActionRun.due_at <= cutoff)
        .order_by(ActionRun.due_at, ActionRun.job_id)
        .limit(PAGE)
    )
    if after is not None:
        query = query.where(
            (ActionRun.due_at > after[0])
            | ((ActionRun.due_at == after[0]) & (ActionRun.job_id > after[1]))
        )
    with rt.db.session() as session:
        return list(session.execute(query))


def _without_live_job(rt: Runtime, rows: Sequence[Any]) -> tuple[list[Lost], list[Any]]:
    """Split planned actions: those no live job carries, and those whose own job ended."""
    ids = sorted({r.job_id for r in rows} | {r.batch_job for r in rows if r.batch_job})
    statuses = _job_statuses(rt, ids)
    lost: list[Lost] = []
    finished: list[Any] = []
    for row in rows:
        own = statuses.get(row.job_id)
        if own in LIVE or statuses.get(row.batch_job) in LIVE:
            continue
        if own in ("failed", "finished", "stopped", "canceled"):
            finished.append(row)
            continue
        if row.fact_id is None or row.profile_id is None or row.queue is None:
            finished.append(row)  # its fact or profile was deleted: nothing left to act on
            continue
        lost.append(
            Lost(
                row.job_id,
                row.action,
                row.fact_id,
                row.profile_id,
                row.rule_name or "",
                row.queue,
                row.params or {},
                row.unless,
                bool(row.delayed),
                row.due_at,
            )
        )
    return lost, finished


def _job_statuses(rt: Runtime, ids: Sequence[str]) -> dict[str, str | None]:
    """Each job's RQ status; ``None`` for a job Redis lost, or one ``queued`` in no queue.

    A worker takes a job off its queue (LPOP) before it marks it started: one that died or
    lost Redis in between leaves the job ``queued`` in no queue and no registry, and nobody
    will ever run it (a Redis restarted from its AOF keeps it that way). Its actions are
    lost as surely as if Redis had lost the job.
    """
    with rt.redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(Job.key_for(job_id), ["status", "origin"])
        fields = pipe.execute()
    statuses: dict[str, str | None] = {}
    origins: dict[str, str] = {}
    for job_id, (status, origin) in zip(ids, fields, strict=True):
        statuses[job_id] = status.decode() if status else None
        if statuses[job_id] == "queued" and origin:
            origins[job_id] = origin.decode()
    if origins:
        with rt.redis.pipeline(transaction=False) as pipe:
            for job_id, name in origins.items():
                pipe.lpos(queue(name, rt.redis).key, job_id)
            positions = pipe.execute()
        for job_id, position in zip(origins, positions, strict=True):
            if position is None:
                statuses[job_id] = None  # taken off its queue and never started
    return statuses


def _settle_finished(rt: Runtime, rows: Sequence[Any]) -> int:
    """Settle actions whose own job ended without settling them (it gave up, or was lost)."""
    settled = 0
    for row in rows:
        status, outcome = _ending(rt, row)
        with rt.db.session() as session:
            result = session.execute(
                update(ActionRun)
                .where(
                    ActionRun.job_id == row.job_id,
                    ActionRun.status == ActionStatus.PLANNED.value,
                )
                .values(status=status.value, outcome=outcome, finished_at=utcnow())
            )
            settled += result.rowcount  # type: ignore[attr-defined]
    return settled


def _ending(rt: Runtime, row: Any) -> tuple[ActionStatus, str]:
    """How an action whose job ended without a record ends: failed, with the last error."""
    if row.fact_id is None or row.profile_id is None:
        return ActionStatus.SKIPPED, "profile or fact no longer exists"
    try:
        job = Job.fetch(row.job_id, connection=rt.redis)
    except NoSuchJobError:
        return ActionStatus.FAILED, "its job ended without a record"
    status = job.get_status()
    result = job.latest_result()
    if str(getattr(status, "value", status)) == "finished":
        return ActionStatus.DONE, f"finished: {result.return_value if result else None}"
    text = (result.exc_string if result is not None else None) or ""
    lines = [line for line in text.splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "no error recorded"
    return ActionStatus.FAILED, f"gave up after its retries: {last}"
