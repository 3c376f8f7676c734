"""``kill -9`` of a worker: in the middle of an evaluation, and in the middle of a mail batch.

A killed worker's evaluation is rolled back and its facts are taken by the other worker; a
killed worker's batch of actions is taken up by another within two minutes, its mails sent
once each (the one in flight at the kill may end ``unknown``, never sent twice).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.conftest import wait_until
from tests.faults.background import Background, in_background
from tests.faults.observe import order_facts
from tests.faults.scenario import FaultHub

pytestmark = pytest.mark.faults

TWO_MINUTES = 120


def test_kill_worker_during_evaluation(fault_hub: Callable[..., FaultHub]) -> None:
    """A backlog of 300 orders; one worker is killed while it evaluates a batch of them.

    Each batch's commit takes 200 ms (a deferred trigger), so that a batch is in progress
    long enough to be killed in the middle of it, whatever the machine's speed.
    """
    hub = fault_hub(
        start_workers=False, batch_size=25, prepare=lambda probe: probe.make_commits_slow(0.2)
    )
    facts, expected = order_facts("eval", contacts=100, per_contact=3)
    hub.client.post_all(facts, per_request=100, threads=1)
    hub.start_workers()

    def evaluating() -> str | None:
        (evaluated,) = hub.probe.rows("SELECT count(*) FROM facts WHERE status = 'evaluated'")[0]
        return hub.busy_worker("hub.worker.drain.drain_pending") if evaluated else None

    assert wait_until(lambda: evaluating() is not None, 30, interval=0.01), "nobody evaluated"
    victim = evaluating()
    assert victim is not None
    (pending,) = hub.probe.rows("SELECT count(*) FROM facts WHERE status = 'pending'")[0]
    hub.procs.kill(victim)
    killed_at = time.monotonic()
    hub.settle(
        expected,
        fault_at=killed_at,
        deadline=TWO_MINUTES,
        stall=None,
        max_unknown=0,  # an evaluating worker has no mail in flight
        notes=f"killed {victim} in drain_pending, {pending} facts pending",
    )


def kill_worker_during_mail_batch(
    make: Callable[..., FaultHub], injected: Callable[[], None]
) -> None:
    """Batches of 100 mails to a relay taking 30 ms a mail; the worker sending one is killed.

    Its batch is retried once the lease runs out (``HEARTBEAT_TTL``, 60 s after the last
    beat), after the retry's delay (10 s), by whichever worker holds RQ's scheduler lock
    then (the killed one held it: the lock lasts a minute, a worker's maintenance tries to
    take it every 30 s): within the two minutes promised, most of it waiting, so this
    scenario runs in the background.
    """
    hub = make(batch_size=100, sink_delay=0.03)
    facts, expected = order_facts("mailbatch", contacts=100, per_contact=3)
    hub.client.post_all(facts, per_request=100, threads=1)

    def sending() -> str | None:
        if len(hub.sink.snapshot()) < 10:
            return None
        return hub.busy_worker("hub.actions.batch.run_actions", queue="mail")

    assert wait_until(lambda: sending() is not None, 60, interval=0.01), "no mail batch ran"
    victim = sending()
    assert victim is not None
    at_kill = len(hub.sink.snapshot())
    hub.procs.kill(victim)
    killed_at = time.monotonic()
    injected()
    hub.settle(
        expected,
        fault_at=killed_at,
        deadline=TWO_MINUTES,
        stall=None,
        max_unknown=1,
        notes=f"killed {victim} in a mail batch, {at_kill} of 300 mails at the sink",
    )


@in_background(kill_worker_during_mail_batch)
def test_kill_worker_during_mail_batch(
    background: Background, request: pytest.FixtureRequest
) -> None:
    """The killed worker's batch is taken up within two minutes, each mail sent once."""
    background.outcome(request.node)
