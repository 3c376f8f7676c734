"""``hub up | serve | worker | scheduler``: run the hub, or one of its processes."""

from __future__ import annotations

import os
import sys

import click
from sqlalchemy.engine import make_url

from hub.cli.common import embedded, read_settings, ruleset_or_exit
from hub.config import Settings
from hub.db import Database
from hub.worker.process import run_scheduler, run_worker
from hub.worker.supervisor import CannotListen, Supervisor, answers, check_port, health_url

UP_TIMEOUT = 60.0  # seconds the web server has to answer /healthz after it started


@click.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--scheduler/--no-scheduler", default=True, help="Also run the cron scheduler.")
def worker(burst: bool, scheduler: bool) -> None:
    """Run a worker: evaluates facts in batches and runs action jobs.

    It outlives Redis and database outages: it waits for them and goes on. With the cron
    scheduler (the default), that runs as a child process, started again if it dies.
    """
    settings = embedded(read_settings())
    _check_rules_or_exit(settings)
    companions = Supervisor(lambda message: click.echo(message, err=True))
    if scheduler and not burst:
        companions.add("scheduler", _hub_argv(["scheduler", "--parent", str(os.getpid())]))
    try:
        run_worker(settings, burst=burst, keep_alive=companions.restart_exited)
    finally:
        companions.stop()


@click.command("scheduler")
@click.option("--parent", type=int, default=None, hidden=True, help="Stop when PID is gone.")
def scheduler_cmd(parent: int | None) -> None:
    """Run the cron scheduler (the sweep that re-drives stuck facts and lost actions)."""
    run_scheduler(embedded(read_settings()), parent=parent)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--processes", default=2, show_default=True, type=int, help="gunicorn workers")
def serve(host: str, port: int, processes: int) -> None:
    """Run the web server (gunicorn) for the REST API."""
    settings = embedded(read_settings())
    _listenable_or_exit(host, port)
    _upgrade(settings)
    supervisor = Supervisor(_say)
    supervisor.handle_signals()
    try:
        supervisor.add("web", _web_argv(host, port, processes))
        _wait_for_web_or_exit(supervisor, host, port)
        click.echo(f"hub web server on http://{host}:{port}/")
        code = supervisor.run(restart=False)
    finally:
        supervisor.stop()
    if code:
        sys.exit(code)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", "n_workers", default=1, show_default=True, type=int)
def up(host: str, port: int, n_workers: int) -> None:
    """Run everything: web server, workers and scheduler, on embedded defaults if unset.

    Says "hub is up" once the web server answers; exits non-zero if it cannot listen on
    the port. A process that dies is started again (with a backoff); Ctrl-C or SIGTERM
    stops them all.
    """
    settings = embedded(read_settings())
    _listenable_or_exit(host, port)
    _upgrade(settings)
    _check_rules_or_exit(settings)
    supervisor = Supervisor(_say)
    supervisor.handle_signals()
    try:
        supervisor.add("web", _web_argv(host, port, 2))
        supervisor.add("scheduler", _hub_argv(["scheduler", "--parent", str(os.getpid())]))
        for n in range(n_workers):
            supervisor.add(f"worker-{n}", _hub_argv(["worker", "--no-scheduler"]))
        _wait_for_web_or_exit(supervisor, host, port)
        click.echo(
            f"hub is up: http://{host}:{port}/  (database {_safe(settings.resolved_database_url)})"
        )
        supervisor.run(restart=True)
    finally:
        supervisor.stop()


def _listenable_or_exit(host: str, port: int) -> None:
    try:
        check_port(host, port)
    except CannotListen as exc:
        raise click.ClickException(f"{exc}; choose another with --port") from exc


def _wait_for_web_or_exit(supervisor: Supervisor, host: str, port: int) -> None:
    """Return once /healthz answers HTTP (any status); else stop everything and exit 1."""
    url = health_url(host, port)
    if supervisor.wait_until(lambda: answers(url) is not None, UP_TIMEOUT, watch="web"):
        return
    if supervisor.stopping:
        raise SystemExit(0)  # asked to stop while starting: the finally stops the children
    web = supervisor.children["web"]
    code = web.proc.poll() if web.proc is not None else None
    if code is not None:
        raise click.ClickException(
            f"the web server exited with {code} before it answered on {host}:{port}"
        )
    raise click.ClickException(f"the web server did not answer {url} in {UP_TIMEOUT:.0f} s")


def _say(message: str) -> None:
    click.echo(f"hub up: {message}", err=True)


def _upgrade(settings: Settings) -> None:
    Database(settings.resolved_database_url).upgrade()


def _check_rules_or_exit(settings: Settings) -> None:
    # only read and checked here: the worker compiles them itself when it starts
    ruleset_or_exit(settings.rules_dir, "the rule files are invalid; the hub does not start")


def _hub_argv(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "hub", *args]


def _web_argv(host: str, port: int, processes: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(processes),
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--access-logfile",
        "-",
        "--no-control-socket",
        "hub.app:create_app()",
    ]


def _safe(url: str) -> str:
    """A URL fit for a log line: the password replaced."""
    return make_url(url).render_as_string(hide_password=True)
