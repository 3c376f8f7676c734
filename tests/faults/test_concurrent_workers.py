"""Two workers on the same contacts: field updates, increments and history conditions.

Facts of one contact must be evaluated in order, by one worker at a time, and profile writes
must change only the fields they set: the result is the one a single worker would give
(issue 11, item 3). Every commit of an evaluation or of an action job is made 50 ms slower,
which widens the windows in which a second worker could read a contact's history without
the first worker's facts, or a profile without the increment an action job is committing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.faults.observe import visit_facts
from tests.faults.scenario import FaultHub

pytestmark = pytest.mark.faults

CONTACTS = 12


def test_two_workers_same_contacts(fault_hub: Callable[..., FaultHub]) -> None:
    """12 contacts, half with 21 visits and half with 6, taken by two workers 4 facts a batch.

    Every visit fires a ``visits`` increment; the first fires ``first-visit`` (an increment
    and a mail) once per contact, the twentieth ``twentieth-visit`` once per contact with
    20 or more. Half of the contacts' visits carry ``profile.fields`` too.
    """
    hub = fault_hub(
        start_workers=False,
        batch_size=4,
        prepare=lambda probe: probe.make_commits_slow(0.05, ("rule_firings", "action_runs")),
    )
    facts, expected = visit_facts(
        "visits",
        visits=[21 if c % 2 else 6 for c in range(CONTACTS)],
        fields=[c % 4 < 2 for c in range(CONTACTS)],
    )
    hub.client.post_all(facts, per_request=50, threads=1)  # in order: one thread
    hub.start_workers()
    started = time.monotonic()
    hub.settle(
        expected,
        fault_at=started,
        deadline=60,
        stall=20,
        notes=f"{len(facts)} visits of {CONTACTS} contacts, backlog taken by 2 workers",
    )
    shares = hub.evaluated_by_worker()
    print(f"[faults] facts evaluated by each worker: {shares}")
    assert len([n for n in shares.values() if n]) == 2, f"one worker did it all: {shares}"
    assert hub.probe.slow_commits() >= 10, "the trigger did not slow the commits"
