"""Harness of the fault suite: the hub's real processes, with faults injected.

Each scenario gets a PostgreSQL database of its own (a copy of the migrated template), a
``redis-server`` of its own on a free loopback port (with AOF persistence or none), a real
SMTP server that counts what it accepts by Message-ID and by recipient, a rule directory
written here, an API key made by ``hub apikey create``, and the hub's processes as
subprocesses, each in its own process group: ``hub serve`` (gunicorn), two ``hub worker
--no-scheduler`` and one ``hub scheduler``. A client posts facts over HTTP and records every
202; a fault is injected; then :meth:`FaultHub.settle` waits until every acknowledged fact is
evaluated, every mail is at the sink and every counter is exact, and checks that nothing
happened twice. The recovery time of each scenario is printed in the summary at the end of
the run (docs/operations.md, "Fault tolerance", has the figures).

Scenarios whose recovery is mostly waiting (a lease to run out, a slow relay) run in the
background, beside the others (tests/faults/background.py); their tests come last.
Everything a scenario started is killed at its end, and its database dropped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _postgres_database, cli_api_key
from tests.faults.background import Background, body_of, run_last, scenario_name
from tests.faults.observe import DOMAIN, FactClient, Probe
from tests.faults.scenario import FIGURES, FaultHub
from tests.faults.services import (
    SWEEP_SECONDS,
    HubProcesses,
    MailSink,
    RedisServer,
    Teardown,
    wait_for_web,
    wait_for_workers,
    write_rules,
)


@contextmanager
def hub_factory(
    template: str, root: Path, name: str, teardown: Teardown | None = None
) -> Iterator[Callable[..., FaultHub]]:
    """``make(persistent=..., sink_delay=..., ...)`` starts a hub of the scenario's own.

    Keyword arguments: ``persistent`` (Redis AOF, default True), ``batch_size`` (facts per
    evaluation batch, default 50), ``sink_delay``, ``slow_first``, ``slow_seconds`` (see
    :class:`MailSink`), ``start_workers`` (default True: start the two workers at once),
    ``prepare`` (called with a :class:`Probe` on the new database before anything starts).
    Everything it started is undone when the block ends (or by ``teardown.run()``).
    """
    stack = teardown or Teardown()

    def make(
        *,
        persistent: bool = True,
        batch_size: int = 50,
        sink_delay: float = 0.0,
        slow_first: int = 0,
        slow_seconds: float = 0.0,
        start_workers: bool = True,
        prepare: Callable[[Probe], None] | None = None,
    ) -> FaultHub:
        database = _postgres_database(template)
        database_url = next(database)
        stack.add(lambda: next(database, None))  # drops the database
        probe = Probe(database_url)
        stack.add(probe.engine.dispose)
        if prepare is not None:
            prepare(probe)
        redis = RedisServer(root / "redis", persistent=persistent)
        stack.add(redis.kill)
        redis.start()
        sink = MailSink(delay=sink_delay, slow_first=slow_first, slow_seconds=slow_seconds)
        sink.controller.start()
        stack.add(sink.controller.stop)
        home = root / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(
            HUB_HOME=str(home),
            HUB_DATABASE_URL=database_url,
            HUB_REDIS_URL=redis.url,
            HUB_SMTP_URL=sink.url,
            HUB_MAIL_FROM=f"hub@{DOMAIN}",
            HUB_RULES_DIR=str(write_rules(root / "rules")),
            HUB_SECRET_KEY="fault-suite-secret-0123456789",
            HUB_FACT_BATCH_SIZE=str(batch_size),
            HUB_SWEEP_INTERVAL_SECONDS=str(SWEEP_SECONDS),
        )
        procs = HubProcesses(root, env)
        stack.add(procs.stop_all)
        workers = ["worker-1", "worker-2"]
        procs.start_web()
        procs.start_scheduler()
        if start_workers:
            for worker in workers:
                procs.start_worker(worker)
        key = cli_api_key(env, "faults")  # while the processes start
        hub = FaultHub(
            name=name,
            root=root,
            database_url=database_url,
            redis=redis,
            sink=sink,
            procs=procs,
            probe=probe,
            client=FactClient(procs.base_url, key),
            workers=workers,
        )
        wait_for_web(procs)
        if start_workers:
            wait_for_workers(redis, len(hub.workers), procs)
        return hub

    try:
        yield make
    finally:
        stack.run()


@pytest.fixture
def fault_hub(
    postgres_template: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., FaultHub]]:
    """Start a hub of the scenario's own: ``fault_hub(persistent=..., ...)`` (see above)."""
    with hub_factory(postgres_template, tmp_path, scenario_name(request.node)) as make:
        yield make


@pytest.fixture(scope="session", autouse=True)
def background(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Background]:
    """The scenarios that mostly wait, started at once and run beside the others."""
    items = [item for item in request.session.items if body_of(item) is not None]
    # the template is made here, not in a scenario's thread (and only if one needs it)
    template = request.getfixturevalue("postgres_template") if items else ""
    runs = Background(
        lambda name, root, teardown: hub_factory(template, root, name, teardown),
        lambda name: tmp_path_factory.mktemp(name),
    )
    try:
        runs.start(items)
        yield runs
    finally:
        runs.stop()


ORDER: list[str] = []  # the scenarios in the order of their files, for the summary


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The collectors of background scenarios last (see tests/faults/background.py)."""
    ORDER[:] = [scenario_name(item) for item in items]
    run_last(items)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures of every scenario run, as a table (docs/operations.md has them)."""
    if not FIGURES:
        return
    columns = [
        "scenario",
        "facts",
        "evaluated",
        "mails expected",
        "mails at sink",
        "duplicates",
        "unknown",
        "lost increments",
        "http failures",
        "recovery s",
        "result",
    ]
    terminalreporter.section("fault suite")
    terminalreporter.write_line("| " + " | ".join(columns) + " |")
    terminalreporter.write_line("|" + "---|" * len(columns))
    rank = {name: n for n, name in enumerate(ORDER)}
    for figure in sorted(FIGURES, key=lambda f: rank.get(f["scenario"], len(rank))):
        cells = ["-" if figure[c] is None else str(figure[c]) for c in columns]
        terminalreporter.write_line("| " + " | ".join(cells) + " |")
