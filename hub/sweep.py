"""The periodic sweep: nothing stored may wait forever.

Run by RQ's ``CronScheduler`` every ``sweep_interval_seconds``: hands back facts whose worker
died mid-batch, wakes a worker for facts stored while Redis was down, and cleans the started
registries so that action jobs of a killed worker are retried well within two minutes.
"""

from __future__ import annotations

import logging

from rq.registry import StartedJobRegistry
from sqlalchemy import exists, select

from hub import runtime
from hub.evaluate import release_expired_claims
from hub.models import Fact, FactStatus
from hub.queue import ALL_QUEUES, queue, request_evaluation

log = logging.getLogger(__name__)


def sweep() -> dict[str, int]:
    """RQ job: release expired claims, wake a drain for pending facts, clean registries."""
    rt = runtime.get()
    released = release_expired_claims(rt)
    for name in ALL_QUEUES:
        StartedJobRegistry(queue=queue(name, rt.redis)).cleanup()
    with rt.db.session() as session:
        pending = session.scalar(select(exists().where(Fact.status == FactStatus.PENDING.value)))
    if pending:
        request_evaluation(rt.settings, rt.redis)
    if released:
        log.warning("released %d facts held by a worker that stopped", released)
    return {"released": released, "pending": int(bool(pending))}
