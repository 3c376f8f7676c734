"""Old job path of the sweep, kept for jobs already in Redis.

RQ stores a job's function by dotted path; sweeps queued by the cron scheduler before the
layout by concept name ``hub.sweep.sweep``. New ones use :mod:`hub.worker.sweep`.
"""

from __future__ import annotations

from hub.worker.sweep import sweep

__all__ = ["sweep"]
