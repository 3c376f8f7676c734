"""Riding out an outage: one log line when it begins, one when it ends, a capped backoff."""

from __future__ import annotations

import logging

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from hub.worker.outage import Outage, wait_for_redis
from tests.conftest import free_port


def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage("Redis", logger=logging.getLogger("test.outage"))
    with caplog.at_level(logging.INFO, logger="test.outage"):
        for _ in range(5):
            outage.failed(RedisConnectionError("refused"))
        assert outage.down
        assert outage.recovered() is True
        assert outage.recovered() is False  # no outage under way: nothing to say
        outage.failed(RedisConnectionError("refused again"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "Redis unavailable (ConnectionError: refused)" in lines[0]
    assert "available again after" in lines[1]
    assert "refused again" in lines[2]
    assert outage.outages == 2


def test_the_backoff_doubles_up_to_its_cap_and_starts_over_after_an_outage() -> None:
    outage = Outage("Redis", first_delay=0.5, max_delay=4)
    outage.failed(RedisConnectionError("down"))
    assert [outage.next_delay() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    outage.recovered()
    outage.failed(RedisConnectionError("down"))
    assert outage.next_delay() == 0.5


def test_wait_until_retries_until_the_check_passes_sleeping_the_backoff() -> None:
    outage = Outage("Redis", first_delay=1, max_delay=2)
    calls: list[int] = []
    slept: list[float] = []

    def check() -> None:
        calls.append(1)
        if len(calls) < 4:
            raise RedisConnectionError("not yet")

    assert outage.wait_until(check, sleep=slept.append) is True
    assert len(calls) == 4 and slept == [1, 2, 2]
    assert not outage.down


def test_wait_until_gives_up_when_told_to_stop() -> None:
    outage = Outage("Redis")
    stops = iter([False, False, True])

    def down() -> None:
        raise RedisConnectionError("down")

    assert outage.wait_until(down, stop=lambda: next(stops), sleep=lambda _s: None) is False


def test_errors_that_are_not_an_outage_are_not_ridden_out() -> None:
    def bug() -> None:
        raise ResponseError("WRONGTYPE")

    with pytest.raises(ResponseError):
        Outage("Redis").wait_until(bug, sleep=lambda _s: None)


def test_wait_for_redis_pings_a_real_server_and_gives_up_on_stop() -> None:
    nobody = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    outage = Outage("Redis", first_delay=0.01, max_delay=0.01)
    attempts = iter(range(3))
    assert wait_for_redis(nobody, outage, stop=lambda: next(attempts) >= 2) is False
    assert outage.down
