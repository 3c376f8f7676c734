"""Planning and enqueueing the action jobs of a batch's firings, and enqueueing them again.

Actions due now go in batch jobs, one per queue and :data:`ACTIONS_PER_JOB` actions (see
:mod:`hub.actions.batch`); each follow-up is a scheduled job of its own, under its action key,
so that it can be listed and cancelled one by one. Every job id is derived from what makes the
work unique, so a batch evaluated twice enqueues the same jobs.

Every planned action is also a row of the action outbox (:class:`hub.models.ActionRun`),
written with the firing; the jobs are enqueued only once that transaction is committed, so a
job never runs before the profile and fact it acts on are there. The sweep enqueues an action
again, alone under its key (:func:`requeue`), when Redis no longer has a live job for it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from rq import Queue, Retry

from hub.actions.batch import ACTION_FAILURE_TTL, ACTION_RESULT_TTL, Item, action_retry, unpack
from hub.mail.delivery import DATA_REPLY_TIMEOUT
from hub.models import ActionStatus
from hub.queue import queue
from hub.rules.actions import ActionRegistry
from hub.rules.conditions import to_plain
from hub.rules.model import ActionCall
from hub.runtime import Runtime

ACTIONS_PER_JOB = 100  # actions of one queue per batch job: small enough to spread over workers
# A batch job fails as a whole only when it overruns its timeout; its done actions are no-ops.
BATCH_RETRY = Retry(max=3, interval=[10, 60, 300])


def job_key(fact_id: int, rule_name: str, index: int) -> str:
    """The deterministic RQ job id of one action: same fact, rule and index, same job."""
    return f"act-{fact_id}-{_rule_hash(rule_name)}-{index}"


@functools.lru_cache(maxsize=4096)
def _rule_hash(rule_name: str) -> str:
    return hashlib.sha1(rule_name.encode()).hexdigest()[:12]


class Planned(NamedTuple):
    """One action a firing asks for, before it becomes (part of) an RQ job."""

    action: ActionCall
    key: str
    fact_id: int
    profile_id: int
    rule_name: str
    run_at: Any
    record: dict[str, Any]  # the firing's record of it, told which batch job carries it


def _item(actions: ActionRegistry, planned: Planned) -> Item:
    """The action as a batch job carries it (see :mod:`hub.actions.batch`)."""
    return (
        actions[planned.action.name].job_path,
        planned.key,
        planned.fact_id,
        planned.profile_id,
        planned.rule_name,
        planned.action.params,
    )


def plan_jobs(registry: ActionRegistry, actions: Sequence[Planned]) -> list[tuple[str, Any, Any]]:
    """The RQ jobs that run ``actions``: ``(queue, prepared job, run_at)``.

    Actions due now go in batch jobs, one per queue and :data:`ACTIONS_PER_JOB` actions
    (see :mod:`hub.actions.batch`); each follow-up is a scheduled job of its own, under its
    action key, so that it can be listed and cancelled one by one.
    """
    jobs: list[tuple[str, Any, Any]] = []
    now_by_queue: dict[str, list[Planned]] = {}
    for planned in actions:
        spec = registry[planned.action.name]
        if planned.run_at is None:
            now_by_queue.setdefault(spec.queue, []).append(planned)
            continue
        # a follow-up: re-checks ``unless`` when due, then runs the action
        _job, kwargs = unpack(_item(registry, planned))
        kwargs["action"] = planned.action.name
        kwargs["unless"] = to_plain(planned.action.unless) if planned.action.unless else None
        jobs.append((spec.queue, _followup_data(kwargs), planned.run_at))
    for name, planned_now in now_by_queue.items():
        for start in range(0, len(planned_now), ACTIONS_PER_JOB):
            chunk = planned_now[start : start + ACTIONS_PER_JOB]
            keys = "\0".join(p.key for p in chunk)
            batch_id = f"acts-{hashlib.sha1(keys.encode()).hexdigest()[:20]}"
            items = [
                _item(registry, p) for p in chunk
            ]  # tuples: the payload is pickled, smaller is faster
            for p in chunk:
                p.record["batch_job"] = batch_id
            data = Queue.prepare_data(
                "hub.actions.batch.run_actions",
                kwargs={"queue_name": name, "items": items},
                # by default RQ describes a job with the repr of all its arguments (4 % of an
                # evaluation, measured); the firings record which actions it carries
                description=f"run_actions({len(chunk)} actions on {name})",
                job_id=batch_id,
                retry=BATCH_RETRY,
                # a slow relay may take DATA_REPLY_TIMEOUT to answer one mail of the batch
                timeout=60 + 10 * len(chunk) + DATA_REPLY_TIMEOUT,
                result_ttl=ACTION_RESULT_TTL,
                failure_ttl=ACTION_FAILURE_TTL,
            )
            jobs.append((name, data, None))
    return jobs


def _followup_data(kwargs: dict[str, Any]) -> Any:
    """A follow-up's job: re-checks ``unless`` when due, then runs the action."""
    return Queue.prepare_data(
        "hub.actions.followups.run_followup",
        kwargs=kwargs,
        # not RQ's default (the repr of every argument): parameters may hold secrets
        description=f"follow-up {kwargs['action']} of rule {kwargs['rule_name']!r}",
        job_id=kwargs["job_key"],
        retry=action_retry(),
        result_ttl=ACTION_RESULT_TTL,
        failure_ttl=ACTION_FAILURE_TTL,
    )


def outbox_rows(
    registry: ActionRegistry, actions: Sequence[Planned], now: Any
) -> list[dict[str, Any]]:
    """The action outbox rows of planned actions (after :func:`plan_jobs` named their batch).

    Each holds what :func:`requeue` needs to enqueue its job again without the rule set
    that planned it: the job, its parameters, a follow-up's ``unless`` and its due time.
    """
    planned_status = ActionStatus.PLANNED.value
    return [
        {
            "job_id": p.key,
            "action": p.action.name,
            "fact_id": p.fact_id,
            "profile_id": p.profile_id,
            "rule_name": p.rule_name,
            "queue": registry[p.action.name].queue,
            "params": p.action.params,
            "unless": to_plain(p.action.unless) if p.action.unless else None,
            "delayed": p.run_at is not None,
            "batch_job": p.record.get("batch_job"),
            "status": planned_status,
            "outcome": None,
            "due_at": p.run_at or now,
            "created_at": now,
            "finished_at": None,
        }
        for p in actions
    ]


class Lost(NamedTuple):
    """A planned action whose job Redis does not have: what :func:`requeue` needs."""

    job_id: str
    action: str
    fact_id: int
    profile_id: int
    rule_name: str
    queue: str
    params: dict[str, Any]
    unless: dict[str, Any] | None
    delayed: bool
    due_at: Any


def requeue(rt: Runtime, lost: Sequence[Lost]) -> None:
    """Enqueue each action again alone, under its key, with the action retries.

    A follow-up goes back to its scheduled time (or now, when that has passed) and re-checks
    ``unless``; an action due now runs its job directly. The action ledger makes a job that
    turns up twice act once.
    """
    jobs: list[tuple[str, Any, Any]] = []
    for item in lost:
        kwargs = {
            "job_key": item.job_id,
            "fact_id": item.fact_id,
            "profile_id": item.profile_id,
            "params": item.params or {},
            "rule_name": item.rule_name,
        }
        if item.delayed:
            kwargs["action"] = item.action
            kwargs["unless"] = item.unless
            jobs.append((item.queue, _followup_data(kwargs), item.due_at))
            continue
        data = Queue.prepare_data(
            rt.actions[item.action].job_path,
            kwargs=kwargs,
            description=f"{item.action} of rule {item.rule_name!r} (enqueued again)",
            job_id=item.job_id,
            retry=action_retry(),
            result_ttl=ACTION_RESULT_TTL,
            failure_ttl=ACTION_FAILURE_TTL,
        )
        jobs.append((item.queue, data, None))
    enqueue(rt, jobs)


def enqueue(rt: Runtime, jobs: list[tuple[str, Any, Any]]) -> None:
    """Enqueue planned jobs in one Redis pipeline: batches now, follow-ups at their time."""
    if not jobs:
        return
    by_queue: dict[str, list[Any]] = {}
    delayed = []
    for name, data, run_at in jobs:
        if run_at is None:
            by_queue.setdefault(name, []).append(data)
        else:
            delayed.append((name, data, run_at))
    with rt.redis.pipeline() as pipe:
        for name, datas in by_queue.items():
            queue(name, rt.redis).enqueue_many(datas, pipeline=pipe)
        for name, data, run_at in delayed:
            queue(name, rt.redis).enqueue_at(
                run_at,
                data.func,
                kwargs=data.kwargs,
                job_id=data.job_id,
                retry=data.retry,
                result_ttl=data.result_ttl,
                failure_ttl=data.failure_ttl,
                pipeline=pipe,
            )
        pipe.execute()
