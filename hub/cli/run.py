"""``hub up | serve | worker | scheduler``: run the hub, or one of its processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import click
from sqlalchemy.engine import make_url

from hub.cli.common import embedded, read_settings, ruleset_or_exit
from hub.config import Settings
from hub.db import Database
from hub.worker.process import run_scheduler, run_worker


@click.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--scheduler/--no-scheduler", default=True, help="Also run the cron scheduler.")
def worker(burst: bool, scheduler: bool) -> None:
    """Run a worker: evaluates facts in batches and runs action jobs."""
    settings = embedded(read_settings())
    _check_rules_or_exit(settings)
    child = _spawn(["scheduler"]) if scheduler and not burst else None
    try:
        run_worker(settings, burst=burst)
    finally:
        if child:
            child.terminate()
            child.wait(10)


@click.command("scheduler")
def scheduler_cmd() -> None:
    """Run the cron scheduler (the sweep that re-drives stuck facts)."""
    run_scheduler(embedded(read_settings()))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--processes", default=2, show_default=True, type=int, help="gunicorn workers")
def serve(host: str, port: int, processes: int) -> None:
    """Run the web server (gunicorn) for the REST API."""
    settings = embedded(read_settings())
    _upgrade(settings)
    web = _spawn_web(host, port, processes)
    click.echo(f"hub web server on http://{host}:{port}/")
    _supervise({"web": web}, restart=False)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", "n_workers", default=1, show_default=True, type=int)
def up(host: str, port: int, n_workers: int) -> None:
    """Run everything: web server, workers and scheduler, on embedded defaults if unset."""
    settings = embedded(read_settings())
    _upgrade(settings)
    _check_rules_or_exit(settings)
    children = {"web": _spawn_web(host, port, 2), "scheduler": _spawn(["scheduler"])}
    for n in range(n_workers):
        children[f"worker-{n}"] = _spawn(["worker", "--no-scheduler"])
    click.echo(
        f"hub is up: http://{host}:{port}/  (database {_safe(settings.resolved_database_url)})"
    )
    _supervise(children, restart=True)


def _upgrade(settings: Settings) -> None:
    Database(settings.resolved_database_url).upgrade()


def _check_rules_or_exit(settings: Settings) -> None:
    # only read and checked here: the worker compiles them itself when it starts
    ruleset_or_exit(settings.rules_dir, "the rule files are invalid; the hub does not start")


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hub", *args])


def _spawn_web(host: str, port: int, processes: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
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
    )


def _supervise(children: dict[str, subprocess.Popen[bytes]], *, restart: bool) -> None:
    """Wait on the children; stop them all on SIGINT/SIGTERM; restart a crashed worker."""
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            time.sleep(0.5)
            for name, proc in list(children.items()):
                code = proc.poll()
                if code is None:
                    continue
                if restart and name.startswith("worker"):
                    click.echo(f"{name} exited with {code}; starting a new one", err=True)
                    children[name] = _spawn(["worker", "--no-scheduler"])
                else:
                    click.echo(f"{name} exited with {code}; stopping", err=True)
                    stopping = True
    finally:
        for proc in children.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in children.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _safe(url: str) -> str:
    """A URL fit for a log line: the password replaced."""
    return make_url(url).render_as_string(hide_password=True)
