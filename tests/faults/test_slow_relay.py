"""A relay that answers DATA later than the hub's per-command SMTP timeout (30 s).

The relay has the mail once its content has arrived: sending it again gives the recipient a
second copy under the same Message-ID (issue 11, item 5). The hub waits for the answer to
DATA up to ``DATA_REPLY_TIMEOUT`` (120 s, hub/mail/delivery.py), so a relay answering after
35 s gets the mail once and its row says ``sent``; a hub that gave up after 30 s would
leave the row ``unknown`` (or, as before, send the mail again).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import wait_until
from tests.faults.background import Background, in_background
from tests.faults.observe import order_facts
from tests.faults.scenario import FaultHub

pytestmark = pytest.mark.faults

SLOW_SECONDS = 35  # longer than the 30 s per-command timeout, shorter than the 120 s for DATA


def relay_slower_than_the_timeout(
    make: Callable[..., FaultHub], injected: Callable[[], None]
) -> None:
    """10 orders; the relay answers the first mail's DATA after 35 s: it arrives once, sent."""
    hub = make(slow_first=1, slow_seconds=SLOW_SECONDS)
    facts, expected = order_facts("relay", contacts=10, per_contact=1)
    hub.client.post_all(facts, per_request=10, threads=1)
    assert wait_until(lambda: hub.sink.snapshot(), 30), "no mail reached the relay"
    slow = hub.sink.snapshot()[0]
    injected()
    seen = hub.settle(
        expected,
        fault_at=slow.at,
        deadline=SLOW_SECONDS + 30,
        stall=None,  # nothing moves while the hub waits for the slow answer
        max_unknown=0,
        notes=f"DATA answered after {SLOW_SECONDS} s for the first mail",
    )
    (status,) = hub.probe.rows(
        "SELECT status FROM messages WHERE message_id = :m", m=slow.message_id
    )[0]
    assert status == "sent", f"the slow mail's row is {status!r}, not 'sent'"
    assert seen.sink_ids[slow.message_id] == 1


@in_background(relay_slower_than_the_timeout)
def test_relay_slower_than_the_timeout(
    background: Background, request: pytest.FixtureRequest
) -> None:
    """The relay's late answer is waited for: one copy, and the row says ``sent``."""
    background.outcome(request.node)
