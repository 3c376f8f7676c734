"""Old job path of follow-ups, kept for jobs already in Redis (scheduled weeks ahead).

RQ stores a job's function by dotted path; follow-ups scheduled before the layout by concept
name ``hub.followups.run_followup``. New ones use :mod:`hub.actions.followups`.
"""

from __future__ import annotations

from hub.actions.followups import run_followup

__all__ = ["run_followup"]
