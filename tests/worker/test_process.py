"""Worker start-up: fewer garbage collections, the rules loaded first, a burst worker stops."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from hub import runtime
from hub.config import Settings
from hub.facts.ingest import notify
from hub.models import Fact, Profile
from hub.rules.exceptions import RuleFileError
from hub.runtime import NoRuntime, Runtime
from hub.worker.process import run_worker, tune_gc
from tests.worker.test_evaluate import order, post


@pytest.fixture
def own_gc() -> Iterator[None]:
    """The test process as it was, whatever a worker start-up sets: its collector and runtime."""
    threshold = gc.get_threshold()
    try:
        before: Runtime | None = runtime.current()
    except NoRuntime:
        before = None
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    try:
        started = runtime.current()
    except NoRuntime:
        return
    if started is not before:  # the worker's own runtime, which a worker process never closes
        started.close()
        runtime.install(before)


def test_tune_gc_freezes_what_exists_and_collects_less_often(own_gc: None) -> None:
    held = [object() for _ in range(10)]
    tune_gc()
    assert gc.get_threshold() == (20_000, 20, 20)
    assert gc.get_freeze_count() > len(held)
    young = [[] for _ in range(10)]
    assert not any(o is held for o in gc.get_objects())  # out of every collection
    assert any(o is young for o in gc.get_objects())  # new objects are still collected


def test_a_burst_worker_on_empty_queues_returns(settings: Settings, own_gc: None) -> None:
    assert run_worker(settings, burst=True) is False  # nothing was there to work


def test_a_burst_worker_works_facts_and_actions_then_returns(
    hub_runtime: Runtime, settings: Settings, own_gc: None
) -> None:
    post(hub_runtime, order())
    notify(settings, hub_runtime.redis)
    assert run_worker(settings, burst=True) is True
    with hub_runtime.db.session() as s:
        assert list(s.scalars(select(Fact.status))) == ["evaluated"]
        assert sorted(s.scalar(select(Profile)).tags) == ["buyer", "shopper"]


def test_invalid_rules_stop_the_worker_at_start(
    settings: Settings, rules_dir: Path, own_gc: None
) -> None:
    (rules_dir / "broken.yaml").write_text("rules:\n  - name: broken\n    when: {fact: 1}\n")
    with pytest.raises(RuleFileError, match=r"broken\.yaml:\d+"):
        run_worker(settings, burst=True)
