"""The runtime: one rule-reload path that never swaps in an invalid set; jobs find their runtime."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from hub import runtime
from hub.queue import FACTS_QUEUE, queue
from hub.rules.exceptions import RuleFileError
from hub.runtime import NoRuntime, Runtime

BROKEN = ("data.total: {gte: 50}", "data.total: {gte: 5")  # a YAML error
CHANGED = ("data.total: {gte: 50}", "data.total: {gte: 500}")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_an_invalid_change_keeps_the_last_valid_set_and_records_why(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    assert hub_runtime.reload_rules() == []
    engine = hub_runtime.engine
    edit(rules_dir / "orders.yaml", *BROKEN)
    problems = hub_runtime.reload_rules()
    assert problems and all(str(rules_dir / "orders.yaml") in str(p) for p in problems)
    assert hub_runtime.engine is engine
    error = hub_runtime.rules_error()
    assert error is not None and str(problems[0]) in error


def test_a_valid_change_swaps_the_engine_and_clears_the_error(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    first = hub_runtime.engine
    orders = rules_dir / "orders.yaml"
    edit(orders, *BROKEN)
    assert hub_runtime.reload_rules()
    edit(orders, "{gte: 5\n", "{gte: 500}\n")
    assert hub_runtime.reload_rules() == []
    assert hub_runtime.engine is not first
    assert hub_runtime.engine.ruleset.version != first.ruleset.version
    assert hub_runtime.rules_error() is None


def test_an_invalid_set_is_reported_once_per_change(
    hub_runtime: Runtime, rules_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub_runtime.reload_rules()
    edit(rules_dir / "orders.yaml", *BROKEN)
    with caplog.at_level(logging.ERROR, logger="hub.runtime"):
        first = hub_runtime.reload_rules()
        again = [hub_runtime.reload_rules() for _ in range(3)]  # every drain asks
    assert again == [first] * 3
    assert len([r for r in caplog.records if "rule files are invalid" in r.message]) == 1


def test_unchanged_files_are_not_read_again(hub_runtime: Runtime, rules_dir: Path) -> None:
    engine = hub_runtime.engine
    orders = rules_dir / "orders.yaml"
    stat = orders.stat()
    text = orders.read_text()
    broken = text.replace("rules:", "rulez:", 1)
    assert len(broken) == len(text)
    orders.write_text(broken)  # same size; then the same time: no change a stat can see
    os.utime(orders, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert hub_runtime.reload_rules() == []
    assert hub_runtime.engine is engine
    os.utime(orders)  # touched: now it is read, and found broken
    assert hub_runtime.reload_rules()


def test_set_engine_none_reads_the_directory_again(hub_runtime: Runtime, rules_dir: Path) -> None:
    version = hub_runtime.engine.ruleset.version
    stat = (rules_dir / "orders.yaml").stat()
    edit(rules_dir / "orders.yaml", "data.total: {gte: 50}", "data.total: {gte: 51}")
    os.utime(rules_dir / "orders.yaml", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert hub_runtime.engine.ruleset.version == version  # same size and time: not seen
    hub_runtime.set_engine(None)
    assert hub_runtime.engine.ruleset.version != version


def test_no_valid_set_ever_raises_rule_file_error(hub_runtime: Runtime, rules_dir: Path) -> None:
    edit(rules_dir / "orders.yaml", *BROKEN)
    with pytest.raises(RuleFileError) as info:
        hub_runtime.engine  # noqa: B018 - the property loads the rules
    assert str(rules_dir / "orders.yaml") in str(info.value)
    assert hub_runtime.rules_error() is not None
    with pytest.raises(RuleFileError):
        hub_runtime.engine  # noqa: B018 - still nothing valid to run


def test_current_is_the_installed_runtime(hub_runtime: Runtime) -> None:
    assert runtime.current() is hub_runtime


def test_current_without_an_installed_runtime_raises_no_runtime() -> None:
    installed = runtime._current  # restored below, whatever another test left
    runtime.install(None)
    try:
        with pytest.raises(NoRuntime, match="hub worker"):
            runtime.current()
    finally:
        runtime.install(installed)


def test_wake_without_a_waker_queues_a_drain_job_at_once(hub_runtime: Runtime) -> None:
    assert hub_runtime.waker is None
    hub_runtime.wake()
    assert queue(FACTS_QUEUE, hub_runtime.redis).count == 1
