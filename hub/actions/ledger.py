"""The preamble every action job shares: act once, on a fact and profile that still exist.

An action job may run twice (a worker killed after the effect, a batch retried, a fact
evaluated again). Each job therefore opens its transaction with :func:`begin`, which settles
the job at once when its key is in the action ledger already, or when its profile or fact is
gone, and otherwise hands the job an :class:`Act`; the job records its effect with
:meth:`Act.done` in the same transaction, so the effect and its ledger entry commit together.
:func:`action_job` turns a settled job into its result text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec

from sqlalchemy.orm import Session

from hub import runtime
from hub.models import ActionRun, Fact, Profile
from hub.runtime import Runtime

P = ParamSpec("P")
GONE = "profile or fact no longer exists"


class Settled(Exception):
    """The job has nothing (more) to do; ``outcome`` is its result."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


@dataclass
class Act:
    """One action job inside its transaction."""

    rt: Runtime
    session: Session
    key: str
    rule_name: str
    fact: Fact
    profile: Profile
    _context: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def context(self) -> dict[str, Any]:
        """What templates see: ``profile`` and ``fact`` as rules see them (read once)."""
        if self._context is None:
            self._context = {"profile": self.profile.as_dict(), "fact": self.fact.as_dict()}
        return self._context

    def done(self, action: str) -> None:
        """Record in the ledger that the action took effect (commits with the effect)."""
        self.session.add(ActionRun(job_id=self.key, action=action, fact_id=self.fact.id))


@contextmanager
def begin(
    job_key: str,
    fact_id: int,
    profile_id: int,
    rule_name: str,
    *,
    lock: bool = False,
    done_before: str = "already applied",
    already: Callable[[Session], str | None] | None = None,
) -> Iterator[Act]:
    """Open the job's transaction; raise :class:`Settled` if there is nothing to do.

    Args:
        job_key: the action's key in the ledger (``action_runs.job_id``).
        fact_id: the fact the rule fired on.
        profile_id: the profile the action is for; the job is settled (not run) if it or the
            fact no longer exists.
        rule_name: the rule whose action this is.
        lock: lock the profile row (``FOR UPDATE``) for a change that reads it first.
        done_before: the outcome when the key is in the ledger already.
        already: the job's own ledger check, for jobs that keep their ledger elsewhere
            (``send_mail`` keeps it in ``messages``); it may write, and what it writes is
            committed before the job is settled with the text it returns.
    """
    rt = runtime.current()
    outcome: str | None
    with rt.db.session() as session:
        if already is not None:
            outcome = already(session)
        else:
            outcome = done_before if session.get(ActionRun, job_key) else None
        if outcome is None:
            profile = session.get(Profile, profile_id, with_for_update=lock)
            fact = session.get(Fact, fact_id)
            if profile is None or fact is None:
                outcome = GONE
            else:
                yield Act(rt, session, job_key, rule_name, fact, profile)
                return
    raise Settled(outcome)


def action_job(job: Callable[P, str]) -> Callable[P, str]:
    """Let ``job`` end early through :class:`Settled`; its outcome is the job's result."""

    @functools.wraps(job)
    def run(*args: P.args, **kwargs: P.kwargs) -> str:
        try:
            return job(*args, **kwargs)
        except Settled as settled:
            return settled.outcome

    return run
