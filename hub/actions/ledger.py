"""The preamble every action job shares: act once, on a fact and profile that still exist.

An action job may run twice (a worker killed after the effect, a batch retried, a job enqueued
again by the sweep). Each job therefore opens its transaction with :func:`begin`, which locks
the action's row of the outbox (:class:`hub.models.ActionRun`, written ``planned`` by the
evaluation) and settles the job at once when the row is settled already, or when its profile
or fact is gone (recorded ``skipped``); otherwise it hands the job an :class:`Act`. The job
records its outcome with :meth:`Act.done` (or :meth:`Act.skip`, :meth:`Act.fail`) in the same
transaction, so the effect and its status commit together, and the API can tell "applied"
from "nothing to do". :func:`action_job` turns a settled job into its result text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec

from sqlalchemy.orm import Session

from hub import runtime
from hub.models import ActionRun, ActionStatus, Fact, Profile
from hub.runtime import Runtime
from hub.times import utcnow

P = ParamSpec("P")
GONE = "profile or fact no longer exists"


class Settled(Exception):
    """The job has nothing (more) to do; ``outcome`` is its result, ``status`` its record."""

    def __init__(self, outcome: str, status: ActionStatus = ActionStatus.DONE) -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.status = status


def settle(
    session: Session,
    job_key: str,
    action: str,
    status: ActionStatus,
    outcome: str | None,
    *,
    fact_id: int | None = None,
    run: ActionRun | None = None,
) -> None:
    """Record an action's outcome in its outbox row (one is added if the job had none).

    A job of an earlier release, or one called outside a firing, has no ``planned`` row: its
    row is written now, as the ledger did before.
    """
    if run is None:
        run = session.get(ActionRun, job_key)
    if run is None:
        run = ActionRun(job_id=job_key, action=action, fact_id=fact_id)
        session.add(run)
    run.status = status.value
    run.outcome = outcome
    run.finished_at = utcnow()


@dataclass
class Act:
    """One action job inside its transaction."""

    rt: Runtime
    session: Session
    key: str
    rule_name: str
    fact: Fact
    profile: Profile
    run: ActionRun | None = None  # its outbox row (None: a job from before the outbox)
    _context: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def context(self) -> dict[str, Any]:
        """What templates see: ``profile`` and ``fact`` as rules see them (read once)."""
        if self._context is None:
            self._context = {"profile": self.profile.as_dict(), "fact": self.fact.as_dict()}
        return self._context

    def done(self, action: str, outcome: str | None = None) -> None:
        """Record that the action took effect (commits with the effect); say what it did."""
        self._settle(action, ActionStatus.DONE, outcome)

    def skip(self, action: str, outcome: str) -> None:
        """Record that the action was not carried out on purpose, and why."""
        self._settle(action, ActionStatus.SKIPPED, outcome)

    def fail(self, action: str, outcome: str) -> None:
        """Record that the action gave up for good (not retried), and why."""
        self._settle(action, ActionStatus.FAILED, outcome)

    def _settle(self, action: str, status: ActionStatus, outcome: str | None) -> None:
        settle(self.session, self.key, action, status, outcome, fact_id=self.fact.id, run=self.run)


@contextmanager
def begin(
    job_key: str,
    fact_id: int,
    profile_id: int,
    rule_name: str,
    *,
    lock: bool = False,
    done_before: str = "already applied",
    already: Callable[[Session], Settled | None] | None = None,
) -> Iterator[Act]:
    """Open the job's transaction; raise :class:`Settled` if there is nothing to do.

    Args:
        job_key: the action's key in the outbox (``action_runs.job_id``).
        fact_id: the fact the rule fired on.
        profile_id: the profile the action is for; the job is settled ``skipped`` (not run)
            if it or the fact no longer exists.
        rule_name: the rule whose action this is.
        lock: lock the profile row (``FOR UPDATE``) for a change that reads it first.
        done_before: the outcome when the action is recorded done already.
        already: the job's own ledger check, for jobs that keep more state elsewhere
            (``send_mail`` keeps it in ``messages``); it may write, and what it writes is
            committed, with the action's row settled as it says, before the job is settled.
    """
    rt = runtime.current()
    settled: Settled | None = None
    with rt.db.session() as session:
        # locked: a second copy of this job waits here until the first one has committed
        run = session.get(ActionRun, job_key, with_for_update=True)
        if run is not None and run.status != ActionStatus.PLANNED.value:
            status = ActionStatus(run.status)
            raise Settled(
                done_before if status == ActionStatus.DONE else f"not run: {status}", status
            )
        if already is not None:
            settled = already(session)
        if settled is None:
            profile = session.get(Profile, profile_id, with_for_update=lock)
            fact = session.get(Fact, fact_id)
            if profile is None or fact is None:
                settled = Settled(GONE, ActionStatus.SKIPPED)
            else:
                yield Act(rt, session, job_key, rule_name, fact, profile, run)
                return
        if run is not None:  # (a job from before the outbox kept no record of this)
            settle(session, job_key, run.action, settled.status, settled.outcome, run=run)
    raise settled


def action_job(job: Callable[P, str]) -> Callable[P, str]:
    """Let ``job`` end early through :class:`Settled`; its outcome is the job's result."""

    @functools.wraps(job)
    def run(*args: P.args, **kwargs: P.kwargs) -> str:
        try:
            return job(*args, **kwargs)
        except Settled as settled:
            return settled.outcome

    return run
