"""One fault scenario: a whole hub of its own, and the judgement of what it did.

:meth:`FaultHub.settle` waits until every acknowledged fact took effect, measures the
recovery time from the fault, checks that nothing happened twice and records the figures
(:data:`FIGURES`) that the run's summary prints.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from redis.exceptions import RedisError
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.conftest import TEST_DATABASE_URL
from tests.faults.observe import Expected, FactClient, Observation, Probe, observe
from tests.faults.services import (
    HubProcesses,
    MailSink,
    RedisServer,
    wait_for_workers,
)

FIGURES: list[dict[str, Any]] = []  # one entry per scenario run, for the summary
# Set when the run ends early (``-x``, Ctrl-C): a scenario still waiting in the background
# stops waiting (see tests/faults/background.py).
ABORT = threading.Event()


class Aborted(Exception):
    """The run ended while this scenario still waited for its hub to recover."""


# --- one scenario -----------------------------------------------------------------------


@dataclass
class FaultHub:
    """A whole hub of the scenario's own, and what it takes to judge its outcome."""

    name: str
    root: Path
    database_url: str
    redis: RedisServer
    sink: MailSink
    procs: HubProcesses
    probe: Probe
    client: FactClient
    workers: list[str]
    poll: float = 0.25  # seconds between two looks while settling

    def start_workers(self) -> None:
        for name in self.workers:
            if name not in self.procs.procs:
                self.procs.start_worker(name)
        wait_for_workers(self.redis, len(self.workers), self.procs)

    def busy_worker(self, func: str, queue: str | None = None) -> str | None:
        """The name of a worker process running a job of ``func`` (RQ's worker registry)."""
        from rq import Worker

        conn = self.redis.connection()
        try:
            for worker in Worker.all(connection=conn):
                job = worker.get_current_job()
                if job is None or job.func_name != func:
                    continue
                if queue is not None and job.origin != queue:
                    continue
                name = self.procs.name_of(worker.pid or -1)
                if name is not None and name not in self.procs.killed:
                    return name
        except RedisError:
            return None
        finally:
            conn.close()
        return None

    def evaluated_by_worker(self) -> dict[str, int]:
        """Facts each worker evaluated, from the results of its finished drain jobs.

        RQ keeps a drain job's result (how many facts it evaluated) for a minute, with the
        name of the worker that ran it; a scenario about two workers checks that both took
        part, or it proves nothing about concurrency.
        """
        from rq import Queue, Worker
        from rq.registry import FinishedJobRegistry

        conn = self.redis.connection()
        try:
            names = {w.name: self.procs.name_of(w.pid or -1) for w in Worker.all(connection=conn)}
            queue = Queue("facts", connection=conn)
            totals: dict[str, int] = {}
            for job_id in FinishedJobRegistry(queue=queue).get_job_ids():
                job = queue.fetch_job(job_id)
                if job is None or job.func_name != "hub.worker.drain.drain_pending":
                    continue
                who = names.get(job.worker_name or "") or job.worker_name or "?"
                totals[who] = totals.get(who, 0) + int(job.return_value() or 0)
            return totals
        finally:
            conn.close()

    def diagnostics(self) -> list[str]:
        """What Redis and the outbox hold: shown when a scenario fails, to say why."""
        from rq import Queue
        from rq.registry import FailedJobRegistry, StartedJobRegistry

        lines = []
        try:
            conn = self.redis.connection()
            try:
                now = time.time()
                for name in ("facts", "actions", "mail"):
                    queue = Queue(name, connection=conn)
                    started = StartedJobRegistry(queue=queue)
                    entries = cast(
                        "list[tuple[bytes, float]]",
                        conn.zrange(started.key, 0, -1, withscores=True),
                    )
                    expiries = [
                        f"{member.decode().split(':')[0]} expires in {score - now:.0f} s"
                        for member, score in entries
                    ]
                    failed = FailedJobRegistry(queue=queue).count
                    lines.append(
                        f"Redis {name}: {queue.count} queued, {len(expiries)} started "
                        f"{expiries[:3]}, {failed} failed"
                    )
            finally:
                conn.close()
        except RedisError as exc:
            lines.append(f"Redis: {type(exc).__name__}: {exc}")
        actions = self.probe.rows(
            "SELECT action, status, count(*) FROM action_runs GROUP BY action, status ORDER BY 1, 2"
        )
        lines.append("action_runs: " + ", ".join(f"{a} {s}: {n}" for a, s, n in actions))
        messages = self.probe.rows("SELECT status, count(*) FROM messages GROUP BY status")
        lines.append("messages: " + ", ".join(f"{s}: {n}" for s, n in messages))
        return lines

    def terminate_connections(self) -> int:
        """``pg_terminate_backend`` of every connection to the hub's database but this one."""
        database = self.database_url.rsplit("/", 1)[1]
        admin = create_engine(TEST_DATABASE_URL, poolclass=NullPool)
        try:
            with admin.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                ).all()
        finally:
            admin.dispose()
        return len(rows)

    def settle(
        self,
        expected: Expected,
        *,
        fault_at: float,
        deadline: float = 60,
        stall: float | None = 30,
        quiet: float = 3,
        quiet_until: float | None = None,
        max_unknown: int = 0,
        alive: bool = True,
        notes: str = "",
    ) -> Observation:
        """Wait until everything acknowledged took effect, then check that nothing went twice.

        Args:
            expected: the mails, counters and fields the acknowledged facts must cause.
            fault_at: when the fault was injected (or ended), ``time.monotonic()``: the
                recovery time is measured from it.
            deadline: seconds after ``fault_at`` to give up waiting.
            stall: give up earlier when nothing at all changed for this long (None: wait
                for the deadline, for a recovery the hub promises within a set time).
            quiet: seconds to go on watching once complete, for late duplicates.
            quiet_until: watch at least until then (``time.monotonic()``), for a resend
                that could only come that late.
            max_unknown: mails allowed to end ``unknown`` (one in flight at each kill).
            alive: every process the test did not kill must still run (no process may
                stay down after a Redis or database outage).
            notes: shown in the summary.
        """
        until = fault_at + deadline
        last_key: tuple[Any, ...] | None = None
        last_change = time.monotonic()
        done_at: float | None = None
        while True:
            if ABORT.is_set():
                raise Aborted(f"{self.name}: the run ended while it waited for its recovery")
            seen = observe(self.probe, self.sink, self.client, expected)
            now = time.monotonic()
            if not seen.incomplete():
                done_at = now
                break
            if seen.key() != last_key:
                last_key, last_change = seen.key(), now
            if now > until or (stall is not None and now - last_change > stall):
                break
            if alive and self.procs.exited():
                break  # a process that exited stays down: waiting cannot mend it
            time.sleep(self.poll)
        if done_at is not None:
            time.sleep(max(quiet, (quiet_until or 0) - time.monotonic()))
            seen = observe(self.probe, self.sink, self.client, expected)
        problems = seen.incomplete() + seen.wrong(max_unknown)
        exited = self.procs.exited()
        if alive and exited:
            problems.append(f"processes exited and stayed down: {exited}")
        recovery = None if done_at is None else done_at - fault_at
        figure = {
            "scenario": self.name,
            "facts": seen.acked,
            "evaluated": seen.evaluated,
            "mails expected": seen.expected_mails,
            "mails at sink": len(seen.sink_ids),
            "duplicates": sum(n - 1 for n in seen.sink_ids.values() if n > 1),
            "unknown": seen.unknown,
            "lost increments": seen.lost_increments,
            "recovery s": None if recovery is None else round(recovery, 1),
            "http failures": sum(self.client.failures.values()),
            "http failure kinds": dict(self.client.failures),
            "result": "FAIL" if problems else "pass",
            "problems": problems,
            "notes": notes,
        }
        FIGURES.append(figure)
        if path := os.environ.get("HUB_FAULTS_FIGURES"):
            with open(path, "a") as fh:
                fh.write(json.dumps(figure) + "\n")
        took = "did not recover" if recovery is None else f"recovered in {recovery:.1f} s"
        print(f"[faults] {self.name}: {took}; {figure}")
        if problems:
            problems += self.diagnostics()
            logs = "\n".join(
                f"--- {name} (exit {code}) ---\n{self.procs.log_tail(name)}"
                for name, code in exited.items()
            )
            waited = f"waited {time.monotonic() - fault_at:.0f} s after the fault"
            pytest.fail(
                f"{self.name}: {took} ({waited}):\n- "
                + "\n- ".join(problems)
                + (f"\n{logs}" if logs else ""),
                pytrace=False,
            )
        return seen
