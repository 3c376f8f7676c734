"""One RQ job runs the actions of a whole batch of facts for one queue.

Creating an RQ job costs about 0.3 ms of Python (build, serialise, compress, several Redis
commands); a batch of facts fires several actions per fact, so one job per action would bound
a worker's evaluation to a thousand-odd facts per second (see docs/benchmarks.md). A batch job
is cheap to create and each action in it stays what it was: a call with its own key in the
action ledger, so running the batch twice (a worker killed mid-way, a fact evaluated again)
takes effect once per action.

An action that raises is handed to an RQ job of its own, whose id is the action's key, with
the action retries (backoff); the others in the batch go on. So one failing action neither
blocks nor repeats the rest, and its retries show in RQ under its own id as before.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import Any

from rq import Retry
from rq.timeouts import JobTimeoutException

from hub import runtime
from hub.queue import queue

log = logging.getLogger(__name__)

# An action's own retries: the first failure in a batch waits the first interval, then RQ's
# Retry takes the rest.
RETRY_INTERVALS = [10, 30, 60, 300, 900]
ACTION_RESULT_TTL = 86400
ACTION_FAILURE_TTL = 30 * 86400


def action_retry() -> Retry:
    """The retries of an action that runs as a job of its own (a follow-up or a retry)."""
    return Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)


@cache
def resolve(dotted: str) -> Callable[..., Any]:
    """The job function at a dotted path, imported once per process."""
    module, _, name = dotted.rpartition(".")
    job: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return job


Item = tuple[str, str, int, int, str, dict[str, Any]]
"""One action of a batch: job function, action key, fact id, profile id, rule name, params."""


def run_actions(queue_name: str, items: list[Item]) -> dict[str, int]:
    """RQ job: run each action of ``items`` in order.

    Returns counts of actions run and handed over to a retry job of their own.
    """
    ran = handed_over = 0
    for item in items:
        func, kwargs = unpack(item)
        try:
            resolve(func)(**kwargs)
            ran += 1
        except JobTimeoutException:
            raise  # the batch job as a whole is late: RQ retries it; done actions are no-ops
        except Exception as exc:  # noqa: BLE001 - one action's failure is that action's
            log.warning(
                "action %s failed (%s: %s); retrying it alone",
                kwargs["job_key"],
                type(exc).__name__,
                exc,
            )
            retry_alone(queue_name, func, kwargs)
            handed_over += 1
    return {"ran": ran, "retrying": handed_over}


def unpack(item: Item) -> tuple[str, dict[str, Any]]:
    """The job function and the keyword arguments every action job takes."""
    func, key, fact_id, profile_id, rule_name, params = item
    kwargs = {
        "job_key": key,
        "fact_id": fact_id,
        "profile_id": profile_id,
        "params": params,
        "rule_name": rule_name,
    }
    return func, kwargs


def retry_alone(queue_name: str, func: str, kwargs: dict[str, Any]) -> None:
    """Enqueue one failed action as a job of its own, id = its key, after the first delay."""
    retry = Retry(max=len(RETRY_INTERVALS) - 1, interval=RETRY_INTERVALS[1:])
    queue(queue_name, runtime.current().redis).enqueue_in(
        timedelta(seconds=RETRY_INTERVALS[0]),
        func,
        kwargs=kwargs,
        job_id=kwargs["job_key"],
        # not RQ's default (the repr of every argument): parameters may hold secrets
        description=f"{func.rpartition('.')[2]} of rule {kwargs['rule_name']!r} (retrying)",
        retry=retry,
        result_ttl=ACTION_RESULT_TTL,
        failure_ttl=ACTION_FAILURE_TTL,
    )
