"""A heartbeat while a job runs in the worker's own process.

RQ's forking ``Worker`` renews a job's lease in its started registry every
``job_monitoring_interval`` while its work horse runs (``monitor_work_horse``). RQ's
``SimpleWorker`` runs the job in its own thread and renews nothing: the lease it takes at
the start lasts the job's whole timeout plus a minute, so a worker killed in a batch of mails
holds that batch for up to twenty minutes before anyone sees it abandoned. The hub's worker
renews a short lease from a thread instead (:class:`JobHeartbeat`), with RQ's own
``maintain_heartbeats``; a killed worker's job is then abandoned, and retried by the
registry's cleanup, a minute after its last beat.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from rq.utils import now

from hub.worker.outage import REDIS_DOWN, Outage

if TYPE_CHECKING:
    from rq.executions import Execution
    from rq.job import Job
    from rq.worker import BaseWorker

log = logging.getLogger(__name__)


class JobHeartbeat:
    """While the ``with`` block runs, renew ``job``'s lease every ``interval`` seconds.

    The beats stop on their own once the job has overrun its timeout by ``grace`` seconds:
    a job stuck where RQ's timeout cannot interrupt it is then left to be seen abandoned and
    retried, as RQ's forking worker kills such a horse. A beat Redis refuses is reported to
    ``outage`` and the next one tries again.
    """

    def __init__(
        self,
        worker: BaseWorker,
        job: Job,
        execution: Execution,
        *,
        interval: float,
        outage: Outage,
        grace: float = 60,
    ) -> None:
        self.worker = worker
        self.job = job
        self.execution = execution
        self.interval = interval
        self.outage = outage
        self.grace = grace
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {job.id}", daemon=True)

    def __enter__(self) -> JobHeartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _overran(self) -> bool:
        timeout = self.job.timeout
        started = self.job.started_at
        if not timeout or timeout < 0 or started is None:
            return False
        return (now() - started).total_seconds() > timeout + self.grace

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self._overran():
                log.warning(
                    "job %s overran its timeout of %s s; its lease is no longer renewed",
                    self.job.id,
                    self.job.timeout,
                )
                return
            try:
                self.worker.maintain_heartbeats(self.job, self.execution)
            except REDIS_DOWN as exc:
                self.outage.failed(exc)
                continue
            self.beats += 1
            self.outage.recovered()
