"""Old job paths of connector pulls, kept for jobs already in Redis.

RQ stores a job's function by dotted path; pulls (and their retries, enqueued minutes ahead)
queued before the layout by concept name ``hub.pull.<job>``. New ones use
:mod:`hub.integrations.pulls`.
"""

from __future__ import annotations

from hub.integrations.pulls import run_pull, schedule_pulls

__all__ = ["run_pull", "schedule_pulls"]
