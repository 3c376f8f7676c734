"""Old job path of the drain job, kept for jobs already in Redis.

RQ stores a job's function by dotted path; drain jobs queued before the layout by concept name
``hub.evaluate.drain_pending``. New ones use :mod:`hub.worker.drain`.
"""

from __future__ import annotations

from hub.worker.drain import drain_pending

__all__ = ["drain_pending"]
