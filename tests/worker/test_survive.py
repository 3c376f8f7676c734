"""``hub worker`` and ``hub scheduler`` outlive a Redis restart, and say so once.

A Redis server of the test's own is killed under them and started again on the same port
(empty: no persistence), as an operator's Redis restart or failover does.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import worker_registration
from rq.cron_scheduler_registry import get_keys as cron_scheduler_keys
from sqlalchemy import select

from hub.config import Settings
from hub.db import Database
from hub.facts.ingest import notify
from hub.models import Fact
from hub.queue import FACTS_QUEUE, queue
from tests.conftest import ROOT, free_port, hub_env, start_hub, stop_hub, wait_until
from tests.worker.test_evaluate import order

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server"),
]

DOWN_SECONDS = 4.0  # long enough for several attempts (0.5, 1, 2 s apart)


@pytest.fixture
def backend() -> str:
    """PostgreSQL: the database is not the thing that goes away here."""
    return "production"


class OwnRedis:
    """A redis-server on a loopback port of its own, which the test stops and starts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        try:
            assert wait_until(lambda: _pings(client), 10), "redis-server did not start"
        finally:
            client.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(5)

    def client(self) -> Redis:
        return Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=5)


def _pings(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.kill()


@pytest.fixture
def env(settings: Settings, own_redis: OwnRedis) -> dict[str, str]:
    return hub_env(settings.with_overrides(redis_url=own_redis.url), HUB_SWEEP_INTERVAL_SECONDS="1")


def _outage_lines(log: Path, who: str) -> tuple[list[str], list[str]]:
    lines = [line for line in log.read_text().splitlines() if f"Redis ({who} " in line]
    return (
        [line for line in lines if "unavailable" in line],
        [line for line in lines if "available again" in line],
    )


def _restart(own_redis: OwnRedis, log: Path, who: str) -> None:
    """Kill Redis, let the process try a few times, start it again; wait until it saw so."""
    own_redis.kill()
    assert wait_until(lambda: len(_outage_lines(log, who)[0]) == 1, 10), log.read_text()[-3000:]
    time.sleep(DOWN_SECONDS)
    own_redis.start()
    assert wait_until(lambda: len(_outage_lines(log, who)[1]) == 1, 20), log.read_text()[-3000:]


def test_the_worker_rides_out_a_redis_restart_and_works_the_next_fact(
    settings: Settings, own_redis: OwnRedis, env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    worker = start_hub(["worker", "--no-scheduler"], env, log)
    redis = own_redis.client()
    db = Database(settings.resolved_database_url)
    try:
        assert wait_until(lambda: worker_registration.get_keys(connection=redis), 20), (
            log.read_text()[-3000:]
        )
        _restart(own_redis, log, "worker")
        assert worker.poll() is None, log.read_text()[-3000:]
        # the restarted Redis is empty: the worker registered itself there again
        assert wait_until(lambda: worker_registration.get_keys(connection=redis), 10)

        from hub.facts.ingest import store_facts
        from hub.facts.schema import FactIn

        (stored,) = store_facts(db, [FactIn.model_validate(order())])
        notify(settings.with_overrides(redis_url=own_redis.url), redis)

        def evaluated() -> bool:
            with db.session() as session:
                status = session.scalar(select(Fact.status).where(Fact.id == stored.id))
            return status == "evaluated"

        assert wait_until(evaluated, 20, interval=0.2), log.read_text()[-3000:]
        assert worker.poll() is None
        down, back = _outage_lines(log, "worker")
        assert len(down) == 1 and len(back) == 1, log.read_text()[-3000:]
        # nothing wrote a line per attempt: RQ's own scheduler process (started by the worker
        # for scheduled jobs) dies with one traceback per outage, no more (see the report)
        text = log.read_text()
        assert text.count("Traceback (most recent call last)") <= 6, text[-3000:]
        assert text.count("raised an exception") <= 1, text[-3000:]
    finally:
        stop_hub(worker)
        redis.close()
        db.dispose()
    assert worker.returncode == 0, log.read_text()[-3000:]


def test_the_scheduler_rides_out_a_redis_restart_and_exits_when_its_parent_is_gone(
    own_redis: OwnRedis, env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "scheduler.log"
    # a parent of the scheduler's own, as `hub worker` and `hub up` are to theirs
    parent_code = (
        "import os, subprocess, sys\n"
        f"log = open({str(log)!r}, 'ab')\n"
        "child = subprocess.Popen([sys.executable, '-m', 'hub', 'scheduler', '--parent',"
        " str(os.getpid())], stdout=log, stderr=log)\n"
        "print(child.pid, flush=True)\n"
        "child.wait()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert parent.stdout is not None
    scheduler_pid = int(parent.stdout.readline())
    parent.stdout.close()
    redis = own_redis.client()
    facts = queue(FACTS_QUEUE, redis)
    try:
        assert wait_until(lambda: cron_scheduler_keys(redis), 20), log.read_text()[-3000:]
        _restart(own_redis, log, "scheduler")
        assert _alive(scheduler_pid), log.read_text()[-3000:]
        # working again on the empty Redis: registered, and the sweep is enqueued again
        assert wait_until(lambda: cron_scheduler_keys(redis), 15), log.read_text()[-3000:]
        assert wait_until(lambda: facts.count > 0, 15), log.read_text()[-3000:]
        down, back = _outage_lines(log, "scheduler")
        assert len(down) == 1 and len(back) == 1, log.read_text()[-3000:]

        parent.send_signal(signal.SIGKILL)  # as a worker killed with SIGKILL
        parent.wait(5)
        assert wait_until(lambda: not _alive(scheduler_pid), 10), "the scheduler outlived it"
    finally:
        redis.close()
        stop_hub(parent)
        if _alive(scheduler_pid):
            signal_pid(scheduler_pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not; the scheduler's parent may be gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def signal_pid(pid: int, sig: int) -> None:
    import os

    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
