"""The ``hub`` command: run the hub, its parts, and its admin tasks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from hub import config
from hub.config import Settings
from hub.exceptions import ConfigError
from hub.rules.exceptions import RuleFileError


def _settings() -> Settings:
    try:
        return config.from_env()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


@click.group()
def main() -> None:
    """The contact hub: facts in, rules evaluated, actions out."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all database migrations."""
    from hub.db import Database

    settings = _settings()
    Database(settings.resolved_database_url).upgrade()
    click.echo("database is up to date")


@main.group()
def apikey() -> None:
    """API keys for the REST API."""


@apikey.command("create")
@click.argument("name")
def apikey_create(name: str) -> None:
    """Create an API key; the key is printed once, alone on the last line."""
    from sqlalchemy.exc import IntegrityError

    from hub.auth import create_api_key
    from hub.db import Database

    settings = _settings()
    database = Database(settings.resolved_database_url)
    database.upgrade()
    try:
        with database.session() as session:
            key = create_api_key(session, name)
    except IntegrityError:
        raise click.ClickException(f"an API key named {name!r} exists already") from None
    click.echo(f"API key {name!r} created; store it now, it is not shown again:", err=True)
    click.echo(key)


@main.group()
def rules() -> None:
    """Rule files."""


@rules.command("check")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def rules_check(path: Path | None) -> None:
    """Validate rule files; print each problem as file:line:column: message."""
    from hub.rules.reader import check_rules

    target = path or _settings().rules_dir
    ruleset, problems = check_rules(target)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        sys.exit(1)
    count = f"{len(ruleset.rules)} rules in {len(ruleset.files)} files"
    click.echo(f"{count} are valid (version {ruleset.version})")


from hub.cli_rules import register as _register_rule_tools  # noqa: E402 - needs the group

_register_rule_tools(rules)


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--scheduler/--no-scheduler", default=True, help="Also run the cron scheduler.")
def worker(burst: bool, scheduler: bool) -> None:
    """Run a worker: evaluates facts in batches and runs action jobs."""
    from hub.worker import run_worker

    settings = _embedded(_settings())
    _check_rules_or_exit(settings)
    child = _spawn(["scheduler"]) if scheduler and not burst else None
    try:
        run_worker(settings, burst=burst)
    finally:
        if child:
            child.terminate()
            child.wait(10)


@main.command("scheduler")
def scheduler_cmd() -> None:
    """Run the cron scheduler (the sweep that re-drives stuck facts)."""
    from hub.worker import run_scheduler

    run_scheduler(_embedded(_settings()))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--processes", default=2, show_default=True, type=int, help="gunicorn workers")
def serve(host: str, port: int, processes: int) -> None:
    """Run the web server (gunicorn) for the REST API."""
    settings = _embedded(_settings())
    _upgrade(settings)
    web = _spawn_web(host, port, processes)
    click.echo(f"hub web server on http://{host}:{port}/")
    _supervise({"web": web}, restart=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", "n_workers", default=1, show_default=True, type=int)
def up(host: str, port: int, n_workers: int) -> None:
    """Run everything: web server, workers and scheduler, on embedded defaults if unset."""
    settings = _embedded(_settings())
    _upgrade(settings)
    _check_rules_or_exit(settings)
    children = {"web": _spawn_web(host, port, 2), "scheduler": _spawn(["scheduler"])}
    for n in range(n_workers):
        children[f"worker-{n}"] = _spawn(["worker", "--no-scheduler"])
    click.echo(
        f"hub is up: http://{host}:{port}/  (database {_safe(settings.resolved_database_url)})"
    )
    _supervise(children, restart=True)


def _embedded(settings: Settings) -> Settings:
    """Start the embedded Redis if no HUB_REDIS_URL is set, and hand its URL to children."""
    if settings.redis_url:
        return settings
    from hub.queue import embedded_redis_url

    url = embedded_redis_url(settings.home)
    os.environ["HUB_REDIS_URL"] = url
    return settings.with_overrides(redis_url=url)


def _upgrade(settings: Settings) -> None:
    from hub.db import Database

    Database(settings.resolved_database_url).upgrade()


def _check_rules_or_exit(settings: Settings) -> None:
    from hub.rules.reader import load_rules

    try:
        load_rules(settings.rules_dir)
    except RuleFileError as exc:
        for problem in exc.errors:
            click.echo(str(problem), err=True)
        raise click.ClickException("the rule files are invalid; the hub does not start") from None


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
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


from hub.cli_connectors import connectors as _connectors  # noqa: E402 - after main exists

main.add_command(_connectors)
