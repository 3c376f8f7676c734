"""The periodic sweep: nothing stored may wait forever.

Run by RQ's ``CronScheduler`` every ``sweep_interval_seconds``: wakes a worker for pending
facts (stored while Redis was down, or left by a worker that died mid-batch: its transaction
rolled back, so they are pending again), and cleans the started registries so that action
jobs of a killed worker are retried well within two minutes.
"""

from __future__ import annotations

import logging

from rq.registry import StartedJobRegistry
from sqlalchemy import exists, select

from hub import runtime
from hub.models import Fact, FactStatus
from hub.queue import ALL_QUEUES, queue, request_evaluation

log = logging.getLogger(__name__)


def sweep() -> dict[str, int]:
    """RQ job: wake a drain for pending facts, clean the started registries."""
    rt = runtime.current()
    for name in ALL_QUEUES:
        StartedJobRegistry(queue=queue(name, rt.redis)).cleanup()
    with rt.db.session() as session:
        pending = session.scalar(select(exists().where(Fact.status == FactStatus.PENDING.value)))
    if pending:
        request_evaluation(rt.settings, rt.redis)
    return {"pending": int(bool(pending))}
