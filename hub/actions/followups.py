"""Follow-ups: actions that run after a delay, re-checked with ``unless`` when they are due.

A delayed action is an RQ job scheduled with ``enqueue_at`` (in the same pipeline as the
batch's other jobs) under its deterministic id ``act-<fact>-<rulehash>-<index>``. It lives in
Redis' scheduled registry, so it survives restarts of every hub process; any worker started
with its scheduler (``hub worker``) enqueues it when due. When it runs, ``unless`` is
evaluated against the profile *as it is then* and the facts that arrived since the trigger;
if it holds the action is recorded ``skipped``. Cancelling one settles its outbox row
``cancelled`` first, so a job already on its way still does nothing, and the sweep never
enqueues it again.
"""

from __future__ import annotations

import logging
from typing import Any

from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import runtime
from hub.actions.ledger import GONE, settle
from hub.exceptions import HubError
from hub.models import ActionRun, ActionStatus, Fact, Profile, RuleFiring
from hub.queue import ALL_QUEUES, queue
from hub.rules.conditions import describe, evaluate, from_plain
from hub.rules.document import fact_document
from hub.rules.history import DbContext
from hub.runtime import Runtime
from hub.times import utcnow

log = logging.getLogger(__name__)

CANCELLED = ActionStatus.CANCELLED.value
SKIPPED = ActionStatus.SKIPPED.value


def run_followup(
    job_key: str,
    fact_id: int,
    profile_id: int,
    params: dict[str, Any],
    rule_name: str,
    action: str,
    unless: dict[str, Any] | None,
) -> str:
    """RQ job: when a delayed action is due, check ``unless`` again, then run the action."""
    rt = runtime.current()
    with rt.db.session() as session:
        run = session.get(ActionRun, job_key)
        if run is not None and run.status in (CANCELLED, SKIPPED):
            return f"not run: {run.status}"
        profile = session.get(Profile, profile_id)
        fact = session.get(Fact, fact_id)
        if profile is None or fact is None:
            if run is not None:
                settle(session, job_key, action, ActionStatus.SKIPPED, GONE, run=run)
            return GONE
        if unless:
            condition = from_plain(unless)
            doc = fact_document(fact, profile)
            if evaluate(condition, doc, DbContext(session, utcnow())):
                held = f"unless {_holding(condition, doc, DbContext(session, utcnow()))}"
                settle(
                    session, job_key, action, ActionStatus.SKIPPED, held, fact_id=fact_id, run=run
                )
                log.info("follow-up %s skipped: %s", job_key, held)
                return f"skipped: {held}"
    return rt.actions[action].job(
        job_key=job_key, fact_id=fact_id, profile_id=profile_id, params=params, rule_name=rule_name
    )


def _holding(condition: Any, doc: dict[str, Any], ctx: DbContext) -> str:
    """The first ``unless`` item that holds (``unless`` is an ``any`` group)."""
    for item in getattr(condition, "items", (condition,)):
        if evaluate(item, doc, ctx):
            return describe(item, doc, ctx)
    return describe(condition)


class UnknownFollowup(HubError):
    """No rule firing ever recorded an action with this job id."""


def cancel(rt: Runtime, job_id: str) -> bool:
    """Cancel one scheduled follow-up; True if it had not run yet.

    Raises:
        UnknownFollowup: no firing recorded an action under ``job_id``.
    """
    with rt.db.session() as session:
        if not _was_fired(session, job_id):
            raise UnknownFollowup(f"no follow-up {job_id} was ever scheduled")
        run = session.get(ActionRun, job_id)
        if run is not None and run.status != ActionStatus.PLANNED.value:
            return False
    try:
        with rt.db.session() as session:
            if run is None:  # fired before the outbox: no planned row
                session.add(
                    ActionRun(
                        job_id=job_id,
                        action=CANCELLED,
                        fact_id=_fact_of(job_id),
                        status=ActionStatus.CANCELLED.value,
                    )
                )
            else:
                cancelled = session.execute(
                    update(ActionRun)
                    .where(
                        ActionRun.job_id == job_id,
                        ActionRun.status == ActionStatus.PLANNED.value,
                    )
                    .values(status=ActionStatus.CANCELLED.value, finished_at=utcnow())
                )
                if not cancelled.rowcount:  # type: ignore[attr-defined]
                    return False  # it ran (or was cancelled) meanwhile
    except IntegrityError:
        return False  # it ran (or was cancelled) meanwhile
    for name in ALL_QUEUES:
        ScheduledJobRegistry(queue=queue(name, rt.redis)).remove(job_id)
    try:
        Job.fetch(job_id, connection=rt.redis).cancel()
    except (NoSuchJobError, InvalidJobOperation) as exc:  # the ledger entry already stops it
        log.debug("job %s: %s", job_id, exc)
    return True


def cancel_for_profile(rt: Runtime, profile_id: int, rule_name: str | None = None) -> list[str]:
    """Cancel every follow-up still scheduled for a profile (optionally of one rule)."""
    cancelled = []
    for job_id in scheduled_for_profile(rt, profile_id, rule_name):
        if cancel(rt, job_id):
            cancelled.append(job_id)
    return cancelled


def scheduled_for_profile(rt: Runtime, profile_id: int, rule_name: str | None = None) -> list[str]:
    """Ids of a profile's follow-ups (optionally of one rule) not yet run, nor cancelled."""
    with rt.db.session() as session:
        query = select(RuleFiring).where(RuleFiring.profile_id == profile_id)
        if rule_name:
            query = query.where(RuleFiring.rule_name == rule_name)
        ids = [j["job_id"] for f in session.scalars(query) for j in f.jobs if "run_at" in j]
        done = set(
            session.scalars(
                select(ActionRun.job_id).where(
                    ActionRun.job_id.in_(ids), ActionRun.status != ActionStatus.PLANNED.value
                )
            )
        )
    return [i for i in ids if i not in done]


def _was_fired(session: Session, job_id: str) -> bool:
    """Whether a firing of the fact named in ``job_id`` recorded an action under that id."""
    fact_id = _fact_of(job_id)
    if fact_id is None:
        return False
    firings = session.scalars(select(RuleFiring).where(RuleFiring.fact_id == fact_id))
    return any(j["job_id"] == job_id for f in firings for j in f.jobs)


def _fact_of(job_id: str) -> int | None:
    parts = job_id.split("-")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
