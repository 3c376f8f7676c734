"""Scenarios whose recovery is mostly waiting, run beside the others.

A worker killed in a mail batch is retried once its lease runs out (a minute after its last
beat, then the retry's delay and a scheduler to enqueue it); a Redis restart waits for the
leases of the jobs it interrupted and for the sweep's grace of 30 s; a slow relay answers
after 35 s. One after the other these waits alone would take most of the suite's five
minutes, while the hubs concerned do next to nothing.

Such a scenario is a function ``body(make, injected, **params)`` attached to its test with
:func:`in_background`: ``make`` starts its hub (as the ``fault_hub`` fixture does) and
``injected()`` says that its fault is in and it only waits for the recovery. At the start of
the session each selected one is run in a thread of its own, one at a time until it has
injected its fault (so that no two faults are injected at once); then the other scenarios
run while they wait. Their tests are run last (:func:`run_last`) and each collects its
scenario's outcome: what it raised, or nothing.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.faults.scenario import ABORT, FaultHub
from tests.faults.services import Teardown

Body = Callable[..., None]
F = TypeVar("F", bound=Callable[..., Any])
INJECT_TIMEOUT = 120  # seconds a scenario may take to start its hub and inject its fault
RESULT_TIMEOUT = 300  # and then to end
POLL = 0.5  # seconds between a waiting scenario's looks at its hub: it is not alone


def in_background(body: Body) -> Callable[[F], F]:
    """Mark a test as the collector of ``body``, run in the background (see above)."""

    def mark(test: F) -> F:
        test._fault_body = body  # type: ignore[attr-defined]
        return test

    return mark


def body_of(item: pytest.Item) -> Body | None:
    return getattr(getattr(item, "function", None), "_fault_body", None)


def run_last(items: list[pytest.Item]) -> None:
    """Collectors last: by then their scenarios have waited while the others ran."""
    items.sort(key=lambda item: body_of(item) is not None)  # stable: order kept otherwise


def scenario_name(item: pytest.Item) -> str:
    return item.name.removeprefix("test_")


@dataclass
class Run:
    """One scenario in its thread."""

    name: str
    injected: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    thread: threading.Thread | None = None
    teardown: Teardown = field(default_factory=Teardown)


class Background:
    """The scenarios of a session run in the background, by test node id."""

    def __init__(
        self,
        hubs: Callable[[str, Path, Teardown], AbstractContextManager[Callable[..., FaultHub]]],
        tmp: Callable[[str], Path],
    ) -> None:
        self.hubs = hubs  # (name, root, teardown) -> context manager giving ``make``
        self.tmp = tmp
        self.runs: dict[str, Run] = {}

    def start(self, items: list[pytest.Item]) -> None:
        """Run each item's scenario in a thread, each until its fault is in."""
        for item in items:
            body = body_of(item)
            if body is None:
                continue
            params = dict(item.callspec.params) if hasattr(item, "callspec") else {}
            run = Run(scenario_name(item))
            self.runs[item.nodeid] = run
            root = self.tmp(re.sub(r"[^A-Za-z0-9_-]+", "-", run.name)[:40])
            run.thread = threading.Thread(
                target=self._run, args=(run, body, root, params), name=run.name, daemon=True
            )
            run.thread.start()
            run.injected.wait(INJECT_TIMEOUT)

    def _run(self, run: Run, body: Body, root: Path, params: dict[str, Any]) -> None:
        try:
            with self.hubs(run.name, root, run.teardown) as make:

                def make_slow_polling(**kwargs: Any) -> FaultHub:
                    hub: FaultHub = make(**kwargs)
                    hub.poll = POLL
                    return hub

                body(make_slow_polling, run.injected.set, **params)
        except BaseException as exc:  # noqa: BLE001 - raised again by outcome()
            run.error = exc
        finally:
            run.injected.set()
            run.done.set()

    def outcome(self, item: pytest.Item) -> None:
        """Wait for the item's scenario to end; raise what it raised."""
        run = self.runs.get(item.nodeid)
        assert run is not None, f"{item.nodeid} was not started in the background"
        if not run.done.wait(RESULT_TIMEOUT):
            pytest.fail(f"{run.name}: still running after {RESULT_TIMEOUT} s", pytrace=False)
        if run.error is not None:
            raise run.error

    def stop(self, grace: float = 15) -> None:
        """End the session: scenarios still waiting stop, and their hubs are torn down.

        A scenario's thread tears its hub down itself once it sees :data:`ABORT`; one that
        is still busy after ``grace`` seconds (in a wait of its own) has its hub torn down
        from here, so that no process outlives the run.
        """
        ABORT.set()
        deadline = time.monotonic() + grace
        for run in self.runs.values():
            if run.thread is not None:
                run.thread.join(max(0.1, deadline - time.monotonic()))
        for run in self.runs.values():
            run.teardown.run()
