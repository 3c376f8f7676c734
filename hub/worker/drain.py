"""Taking pending facts in batches: the ``drain_pending`` job of the ``facts`` queue.

The facts table is the queue of record: ingest commits facts as ``pending``. A drain job takes
a batch in one transaction: it locks pending facts (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so workers take disjoint batches; SQLite serialises writers), leaves those whose contact has
an earlier fact pending elsewhere (:func:`hub.worker.pending.in_turn`), has
:mod:`hub.worker.evaluate` match the rest and record their firings and planned actions, and
commits; only then are the action jobs enqueued. A worker that dies mid-batch leaves no trace:
its transaction is rolled back, its locks are released at once and the facts are still
``pending`` for the next drain. One that dies (or loses Redis) between the commit and the
enqueue leaves planned actions without jobs: the sweep enqueues them (:mod:`hub.worker.sweep`).
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError
from sqlalchemy import update

from hub import runtime
from hub.facts.ingest import notify
from hub.models import Fact, FactStatus
from hub.queue import request_evaluation, wake_key
from hub.runtime import Runtime
from hub.worker.dispatch import enqueue
from hub.worker.evaluate import Evaluated, evaluate_batch
from hub.worker.pending import in_turn, lock_pending

log = logging.getLogger(__name__)

MAX_JOB_SECONDS = 20  # a drain job hands over after this; keeps jobs far below RQ's timeouts
WAIT_FOR_HOLDER_SECONDS = 0.05  # a batch of facts all waiting for another worker's: pause


def drain_pending() -> int:
    """RQ job: evaluate pending facts batch by batch; return how many were evaluated."""
    rt = runtime.current()
    rt.redis.delete(wake_key(rt.settings))
    rt.reload_rules()  # a changed rule directory is picked up here, if it is valid
    started = time.monotonic()
    total = 0
    while True:
        taken = evaluate_next_batch(rt)
        if taken < 0:  # every fact taken waits for an earlier one another worker holds
            time.sleep(WAIT_FOR_HOLDER_SECONDS)
            request_evaluation(rt.settings, rt.redis)
            return total
        if not taken:
            return total
        total += taken
        if taken == rt.settings.fact_batch_size:
            request_evaluation(rt.settings, rt.redis)  # more waiting: let another worker join
        if time.monotonic() - started > MAX_JOB_SECONDS:
            request_evaluation(rt.settings, rt.redis)
            return total


def evaluate_next_batch(rt: Runtime) -> int:
    """Evaluate the next batch of pending facts; return its size (0: nothing pending).

    -1: facts were pending, but each waits for an earlier fact of its contact that another
    worker holds. If the batch fails, its facts are evaluated one by one, so that one bad fact
    fails alone.
    """
    ids: list[int] = []
    waiting = 0
    try:
        with rt.db.session() as session:
            facts, waiting = in_turn(
                session, lock_pending(session, limit=rt.settings.fact_batch_size)
            )
            ids = [f.id for f in facts]
            done = evaluate_batch(rt, session, facts)
    except Exception:
        if not ids:
            raise  # nothing was taken: the database itself failed
        log.exception("batch of %d facts failed; evaluating them one by one", len(ids))
        for fact_id in ids:
            evaluate_one(rt, fact_id)
        return len(ids)
    after_commit(rt, done)
    if not ids and waiting:
        return -1
    return len(ids) + waiting


def after_commit(rt: Runtime, done: Evaluated) -> None:
    """Enqueue a committed batch's action jobs and wake workers for the facts it raised.

    Redis failing here loses nothing: the actions are in the outbox, planned, and the sweep
    enqueues those whose jobs are missing; the facts raised are pending in the table.
    """
    try:
        enqueue(rt, done.jobs)
        if done.raised:
            notify(rt.settings, rt.redis)
    except RedisError as exc:
        log.warning(
            "Redis unavailable after a batch was committed (%s: %s); its %d jobs will be "
            "enqueued by the sweep",
            type(exc).__name__,
            exc,
            len(done.jobs),
        )


def evaluate_one(rt: Runtime, fact_id: int) -> None:
    """Evaluate one pending fact alone; if that fails too, mark it ``failed`` with the error."""
    try:
        with rt.db.session() as session:
            facts, _waiting = in_turn(session, lock_pending(session, ids=[fact_id]))
            done = evaluate_batch(rt, session, facts)
    except Exception as exc:
        log.exception("fact %d could not be evaluated", fact_id)
        with rt.db.session() as session:
            session.execute(
                update(Fact)
                .where(Fact.id == fact_id, Fact.status == FactStatus.PENDING.value)
                .values(status=FactStatus.FAILED.value, error=f"{type(exc).__name__}: {exc}")
            )
        return
    after_commit(rt, done)
