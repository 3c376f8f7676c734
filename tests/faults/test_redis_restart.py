"""Redis killed (``kill -9``) in a mail batch and restarted, with persistence and without.

Workers and the scheduler must wait for Redis and go on by themselves; every acknowledged
fact is evaluated and every mail sent once. Without persistence the queued jobs are gone:
the sweep must find the planned actions whose jobs Redis lost and enqueue them again.
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

DOWN_SECONDS = 3


def redis_killed_and_restarted(
    make: Callable[..., FaultHub], injected: Callable[[], None], persistent: bool
) -> None:
    """400 orders posted over 4 s; Redis is killed while a batch of mails is being sent.

    The relay takes 20 ms a mail, so that a mail batch is running when Redis goes away
    (at least 1 s into the posting) and it is back 3 s later. Two waits the hub promises
    bound the recovery, and nothing moves meanwhile (so no ``stall``): with AOF the batch
    interrupted is left in the started registry and retried once its lease has run out
    (60 s), after the retry's delay (10 s), by a worker's scheduler (which a worker's
    maintenance starts again within 30 s if Redis took it down); without persistence the
    jobs are gone and the sweep enqueues the planned actions again once due for 30 s.
    """
    hub = make(persistent=persistent, sink_delay=0.02)
    facts, expected = order_facts("redis", contacts=100, per_contact=4)
    posting = hub.client.in_background(facts, per_request=10, threads=2, pause=0.2)
    time.sleep(1)
    sending = wait_until(
        lambda: hub.busy_worker("hub.actions.batch.run_actions", queue="mail") is not None,
        30,
        interval=0.01,
    )
    assert sending, "no mail batch ran"
    hub.redis.kill()
    at_kill = len(hub.sink.snapshot())
    time.sleep(DOWN_SECONDS)
    hub.redis.start()
    restarted_at = time.monotonic()
    hub.client.join(posting)
    injected()
    hub.settle(
        expected,
        fault_at=restarted_at,
        deadline=150,
        stall=None,
        notes=(
            f"Redis down {DOWN_SECONDS} s in a mail batch ({at_kill} mails at the sink), "
            f"{'AOF' if persistent else 'no persistence'}"
        ),
    )


@pytest.mark.parametrize("persistent", [True, False], ids=["aof", "no-persistence"])
@in_background(redis_killed_and_restarted)
def test_redis_killed_and_restarted(
    background: Background, request: pytest.FixtureRequest, persistent: bool
) -> None:
    """Workers and scheduler go on by themselves; every fact evaluated, every mail once."""
    background.outcome(request.node)
