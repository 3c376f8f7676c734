"""The hub's database connections terminated under load (``pg_terminate_backend``).

A connection cut in the middle of an evaluation, an action or a request must cost a retry,
never a fact, a mail or an increment; no process may exit and stay down.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.faults.observe import order_facts
from tests.faults.scenario import FaultHub

pytestmark = pytest.mark.faults

ROUNDS = 4


def test_connections_terminated(fault_hub: Callable[..., FaultHub]) -> None:
    """400 orders posted over 4 s; every hub connection is terminated once a second."""
    hub = fault_hub()
    facts, expected = order_facts("pgterm", contacts=100, per_contact=4)
    posting = hub.client.in_background(facts, per_request=10, threads=2, pause=0.2)
    terminated = []
    for _ in range(ROUNDS):
        time.sleep(1)
        terminated.append(hub.terminate_connections())
    last_at = time.monotonic()
    hub.client.join(posting)
    hub.settle(
        expected,
        fault_at=last_at,
        deadline=60,
        notes=f"{ROUNDS} rounds, 1 s apart, {sum(terminated)} connections terminated",
    )
