"""Pull runs: RQ jobs that fetch a stream's changes since its cursor and store them as facts.

A run is a ``connector_runs`` row; each attempt is one RQ job (``run_pull``). Pages are stored
through :func:`hub.facts.ingest.store_facts` first and the page's cursor is written after, in the
same transaction as the run's counters: a crash between the two re-reads a page, whose facts
come back as duplicates, never as new ones, and never skips one.

A remote that times out, answers 5xx or rate-limits us makes the attempt end; the next one is
scheduled with RQ's own ``enqueue_in`` after ``Settings.pull_retry_delays[n]`` seconds or the
remote's ``Retry-After``, whichever is longer. When retries run out, or the failure is one that
retrying cannot fix, the run is recorded as failed with its error, and the cursor stays put.

``schedule_pulls`` runs under RQ's ``CronScheduler`` and starts a run of every stream of every
enabled instance whose ``pull_interval_seconds`` has passed since its last run began.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connectors import registry
from connectors.exceptions import ConnectorError, RemoteUnavailable
from hub import runtime
from hub.exceptions import FatalError
from hub.facts.ingest import notify, store_facts
from hub.integrations.models import ConnectorCursor, ConnectorInstance, ConnectorRun, RunStatus
from hub.integrations.secrets import SecretBox
from hub.integrations.store import InstanceError, load_connector
from hub.queue import ACTIONS_QUEUE, queue
from hub.runtime import Runtime
from hub.times import utcnow

log = logging.getLogger(__name__)

PULL_QUEUE = ACTIONS_QUEUE  # the queues every hub worker listens to
JOB_TIMEOUT = 3600
ACTIVE = (RunStatus.RUNNING.value, RunStatus.RETRYING.value)
# store_facts looks duplicates (a re-read page is all duplicates) up with a row-value IN
# list, which PostgreSQL plans in time quadratic in its length (100 keys: ~16 ms, 500:
# ~290 ms, 1,000: ~1.3 s); pages of a few hundred rows are stored in chunks of this many.
STORE_CHUNK = 100


def start_run(rt: Runtime, instance: str, stream: str, *, trigger: str = "manual") -> int:
    """Record a new run of ``stream`` and enqueue its first attempt; return the run id."""
    connector, instance_id = load_connector(rt.db, SecretBox(rt.settings.secret_key), instance)
    if stream not in connector.streams or not connector.supports_pull:
        streams = ", ".join(connector.streams) or "none"
        raise InstanceError(f"{instance} ({connector.name}) has no stream {stream!r}: {streams}")
    with rt.db.session() as session:
        run = ConnectorRun(
            instance_id=instance_id,
            stream=stream,
            status=RunStatus.RUNNING.value,
            trigger=trigger,
            attempts=0,
            cursor_before=_cursor(session, instance_id, stream),
        )
        session.add(run)
        session.flush()
        run_id = run.id
    _enqueue(rt, run_id, 1, 0)
    return run_id


def run_pull(run_id: int, attempt: int = 1) -> dict[str, Any]:
    """RQ job: one attempt of run ``run_id``; returns the run as recorded."""
    rt = runtime.current()
    with rt.db.session() as session:
        run = session.get(ConnectorRun, run_id)
        if run is None or run.status not in ACTIVE:
            return {"skipped": run_id}
        instance = session.get(ConnectorInstance, run.instance_id)
        name, stream = instance.name if instance else "?", run.stream
        run.status, run.attempts, run.next_attempt_at = RunStatus.RUNNING.value, attempt, None
    lock = rt.redis.lock(f"{rt.settings.redis_prefix}:pull:{name}:{stream}", timeout=JOB_TIMEOUT)
    if not lock.acquire(blocking=False):
        return _finish(rt, run_id, RunStatus.FAILED, "another run of this stream is in progress")
    try:
        return _attempt(rt, run_id, name, stream, attempt)
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - lock expired: nothing left to release
            log.warning("pull lock of %s/%s had expired", name, stream)


def _attempt(rt: Runtime, run_id: int, name: str, stream: str, attempt: int) -> dict[str, Any]:
    try:
        connector, instance_id = load_connector(rt.db, SecretBox(rt.settings.secret_key), name)
        with rt.db.session() as session:
            cursor = _cursor(session, instance_id, stream)
        for page in connector.pull(stream, cursor):
            stored = [
                s
                for i in range(0, len(page.facts), STORE_CHUNK)
                for s in store_facts(rt.db, page.facts[i : i + STORE_CHUNK])
            ]
            if stored:
                notify(rt.settings, rt.redis)
            with rt.db.session() as session:
                run = session.get(ConnectorRun, run_id)
                assert run is not None
                run.pages += 1
                run.facts_accepted += sum(1 for s in stored if s.status == "accepted")
                run.facts_duplicate += sum(1 for s in stored if s.status == "duplicate")
                if page.cursor is not None and page.cursor != cursor:
                    _set_cursor(session, instance_id, stream, page.cursor)
                    cursor = run.cursor_after = page.cursor
    except RemoteUnavailable as exc:
        delays = rt.settings.pull_retry_delays
        if attempt > len(delays):
            return _finish(rt, run_id, RunStatus.FAILED, f"after {attempt} attempts: {exc}")
        delay = max(float(delays[attempt - 1]), exc.retry_after or 0.0)
        _retry_later(rt, run_id, attempt, delay, str(exc))
        return {"run": run_id, "status": RunStatus.RETRYING.value, "retry_in": delay}
    except (ConnectorError, FatalError, InstanceError) as exc:
        return _finish(rt, run_id, RunStatus.FAILED, str(exc))
    except Exception as exc:
        _finish(rt, run_id, RunStatus.FAILED, f"unexpected {type(exc).__name__}: {exc}")
        raise
    return _finish(rt, run_id, RunStatus.SUCCEEDED, None)


def schedule_pulls() -> list[int]:
    """Cron job: start the runs that are due; return their ids."""
    rt = runtime.current()
    now = utcnow()
    due: list[tuple[str, str]] = []
    with rt.db.session() as session:
        instances = session.scalars(
            select(ConnectorInstance).where(
                ConnectorInstance.enabled.is_(True),
                ConnectorInstance.pull_interval_seconds.is_not(None),
            )
        ).all()
        for inst in instances:
            try:
                streams = registry.get(inst.connector).streams
            except ConnectorError as exc:
                log.error("instance %s: %s", inst.name, exc)
                continue
            for stream in streams:
                last = session.scalar(
                    select(ConnectorRun)
                    .where(ConnectorRun.instance_id == inst.id, ConnectorRun.stream == stream)
                    .order_by(ConnectorRun.id.desc())
                    .limit(1)
                )
                if last is not None and last.status in ACTIVE:
                    if now - last.started_at < timedelta(seconds=2 * JOB_TIMEOUT):
                        continue
                    last.status, last.error = RunStatus.FAILED.value, "abandoned (no progress)"
                    last.finished_at = now
                interval = timedelta(seconds=inst.pull_interval_seconds or 0)
                if last is None or now - last.started_at >= interval:
                    due.append((inst.name, stream))
    started = []
    for name, stream in due:
        try:
            started.append(start_run(rt, name, stream, trigger="schedule"))
        except (ConnectorError, InstanceError, FatalError) as exc:
            log.error("cannot start a pull of %s/%s: %s", name, stream, exc)
    return started


def recent_runs(rt: Runtime, instance: str, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs of an instance, newest first, as the API and CLI show them."""
    with rt.db.session() as session:
        inst = session.scalar(select(ConnectorInstance).where(ConnectorInstance.name == instance))
        if inst is None:
            raise InstanceError(f"no connector instance named {instance!r}")
        runs = session.scalars(
            select(ConnectorRun)
            .where(ConnectorRun.instance_id == inst.id)
            .order_by(ConnectorRun.id.desc())
            .limit(limit)
        ).all()
        return [r.as_dict() for r in runs]


def _retry_later(rt: Runtime, run_id: int, attempt: int, delay: float, error: str) -> None:
    with rt.db.session() as session:
        run = session.get(ConnectorRun, run_id)
        assert run is not None
        run.status = RunStatus.RETRYING.value
        run.error = f"attempt {attempt}: {error}"
        run.next_attempt_at = utcnow() + timedelta(seconds=delay)
    log.warning(
        "pull run %s attempt %s failed (%s); retrying in %.0fs", run_id, attempt, error, delay
    )
    _enqueue(rt, run_id, attempt + 1, delay)


def _enqueue(rt: Runtime, run_id: int, attempt: int, delay: float) -> None:
    q = queue(PULL_QUEUE, rt.redis)
    options: dict[str, Any] = {
        "job_id": f"pull-{run_id}-{attempt}",
        "job_timeout": JOB_TIMEOUT,
        "result_ttl": 3600,
        "failure_ttl": 7 * 86400,
    }
    if delay > 0:
        q.enqueue_in(timedelta(seconds=delay), run_pull, run_id, attempt, **options)
    else:
        q.enqueue(run_pull, run_id, attempt, **options)


def _finish(rt: Runtime, run_id: int, status: RunStatus, error: str | None) -> dict[str, Any]:
    with rt.db.session() as session:
        run = session.get(ConnectorRun, run_id)
        assert run is not None
        run.status = status.value
        run.error = error
        run.finished_at = utcnow()
        run.next_attempt_at = None
        result = run.as_dict()
    if status is RunStatus.FAILED:
        log.error("pull run %s failed: %s", run_id, error)
    return result


def _cursor(session: Any, instance_id: int, stream: str) -> str | None:
    row = session.get(ConnectorCursor, (instance_id, stream))
    return row.value if row else None


def _set_cursor(session: Any, instance_id: int, stream: str, value: str) -> None:
    row = session.get(ConnectorCursor, (instance_id, stream))
    if row is None:
        session.add(ConnectorCursor(instance_id=instance_id, stream=stream, value=value))
    else:
        row.value = value
