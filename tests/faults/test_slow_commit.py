"""A slow commit: a deferred trigger makes every evaluation's commit take 200 ms longer.

Action jobs must act only on committed state: a job that runs before the evaluation that
created its profile has committed must not finish having done nothing (issue 11, item 1:
before the action outbox, 300 of 300 mails and most increments were lost this way).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.faults.observe import order_facts
from tests.faults.scenario import FaultHub

pytestmark = pytest.mark.faults


def test_slow_commit(fault_hub: Callable[..., FaultHub]) -> None:
    """200 orders of 100 new contacts, 10 a request, each evaluation's commit 200 ms late.

    Posted a request at a time, so that while one worker commits a batch the other is idle
    and takes its action jobs at once: 200 mails and 200 increments, none lost.
    """
    hub = fault_hub(prepare=lambda probe: probe.make_commits_slow(0.2))
    facts, expected = order_facts("slow", contacts=100, per_contact=2)
    start = time.monotonic()
    hub.client.post_all(facts, per_request=10, threads=1, pause=0.1)
    hub.settle(expected, fault_at=start, deadline=60, notes="200 ms deferred trigger at commit")
    assert hub.probe.slow_commits() >= 10, "the trigger did not slow the evaluations' commits"
