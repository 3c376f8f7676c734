"""The remote HTTP client: answers sorted into retriable and fatal, rate-limit waits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.exceptions import RemoteRejected, RemoteUnavailable
from connectors.http import RemoteClient
from tests.stand_ins.base import Answer, Request, StandIn


class Flaky(StandIn):
    def handle(self, req: Request) -> Answer:
        return Answer(200, {"ok": True})


@pytest.fixture
def flaky() -> Iterator[Flaky]:
    with Flaky() as server:
        yield server  # type: ignore[misc]


@pytest.mark.parametrize(
    ("answer", "error", "retry_after"),
    [
        (Answer(500, b"oops"), RemoteUnavailable, None),
        (Answer(503, b"", {"Retry-After": "42"}), RemoteUnavailable, 42.0),
        (Answer(429, b"", {"Retry-After": "90"}), RemoteUnavailable, 90.0),
        (Answer(404, b"gone"), RemoteRejected, None),
        (Answer(200, b"", delay=0.5), RemoteUnavailable, None),
    ],
)
def test_remote_answers_are_sorted(
    flaky: Flaky, answer: Answer, error: type, retry_after: Any
) -> None:
    flaky.fail_next("/x", answer)
    client = RemoteClient(flaky.url, timeout=0.2, max_inline_wait=1)
    with pytest.raises(error) as caught:
        client.get_json("/x")
    assert getattr(caught.value, "retry_after", None) == retry_after


def test_short_rate_limit_waits_are_slept_through(flaky: Flaky) -> None:
    slept: list[float] = []
    flaky.fail_next("/x", Answer(429, b"", {"Retry-After": "1"}))
    client = RemoteClient(flaky.url, max_inline_wait=2, sleep=slept.append)
    assert client.get_json("/x") == {"ok": True}
    assert slept == [1.0] and flaky.hits("/x") == 2


def test_timeouts_and_refused_connections_are_retriable() -> None:
    with pytest.raises(RemoteUnavailable, match="cannot connect"):
        RemoteClient("http://127.0.0.1:9", timeout=0.5).get_json("/x")
