"""Redis and the queues: one drain job per wake flag; an embedded server per HUB_HOME."""

from __future__ import annotations

import time
from pathlib import Path

from redis import Redis

from hub.config import Settings
from hub.queue import (
    FACTS_QUEUE,
    WAKE_SECONDS,
    connect,
    embedded_redis_url,
    queue,
    request_evaluation,
    wake_key,
)
from hub.runtime import Runtime
from tests.conftest import run_jobs


def test_requests_while_a_drain_job_waits_add_no_job(hub_runtime: Runtime) -> None:
    facts = queue(FACTS_QUEUE, hub_runtime.redis)
    for _ in range(5):
        request_evaluation(hub_runtime.settings, hub_runtime.redis)
    assert facts.count == 1
    assert facts.jobs[0].func_name == "hub.worker.drain.drain_pending"
    assert 0 < hub_runtime.redis.ttl(wake_key(hub_runtime.settings)) <= WAKE_SECONDS


def test_once_the_drain_job_started_the_next_request_queues_another(
    hub_runtime: Runtime,
) -> None:
    facts = queue(FACTS_QUEUE, hub_runtime.redis)
    request_evaluation(hub_runtime.settings, hub_runtime.redis)
    run_jobs(hub_runtime)  # the drain job clears the flag when it starts
    assert facts.count == 0
    request_evaluation(hub_runtime.settings, hub_runtime.redis)
    request_evaluation(hub_runtime.settings, hub_runtime.redis)
    assert facts.count == 1


def test_a_lost_drain_job_is_replaced_once_its_flag_expires(hub_runtime: Runtime) -> None:
    facts = queue(FACTS_QUEUE, hub_runtime.redis)
    request_evaluation(hub_runtime.settings, hub_runtime.redis)
    facts.empty()  # Redis lost the job, the flag is still there
    request_evaluation(hub_runtime.settings, hub_runtime.redis)
    assert facts.count == 0
    hub_runtime.redis.pexpire(wake_key(hub_runtime.settings), 20)  # WAKE_SECONDS, shortened
    time.sleep(0.1)
    request_evaluation(hub_runtime.settings, hub_runtime.redis)
    assert facts.count == 1


def test_embedded_redis_is_started_once_per_home_and_joined_after(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = embedded_redis_url(home)
    assert url.startswith("unix://") and Path(url.removeprefix("unix://")).exists()
    first = Redis.from_url(url)
    first.set("k", "v")
    again = embedded_redis_url(tmp_path / "other" / ".." / "home")  # the same home, spelled apart
    assert again == url
    assert Redis.from_url(again).get("k") == b"v"
    other = embedded_redis_url(tmp_path / "second")
    assert other != url and Redis.from_url(other).get("k") is None
    assert (home / "redis.db").parent.is_dir()


def test_connect_without_a_redis_url_uses_the_embedded_server(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "embedded", secret_key="x" * 32)
    conn = connect(settings)
    try:
        conn.set("seen", "1")
        assert Redis.from_url(embedded_redis_url(tmp_path / "embedded")).get("seen") == b"1"
    finally:
        conn.close()
