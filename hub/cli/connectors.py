"""``hub connectors``: configure connector instances, test them, run and inspect pulls."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import click
import yaml
from rq.exceptions import NoSuchJobError
from rq.job import Job

from connectors import registry
from connectors.exceptions import ConfigInvalid, ConnectorError
from hub.cli.common import build_runtime, read_settings
from hub.exceptions import HubError
from hub.integrations.pulls import recent_runs, run_pull, start_run
from hub.integrations.secrets import SecretBox
from hub.integrations.store import list_instances, load_connector, save_instance
from hub.runtime import Runtime


def _runtime() -> Runtime:
    """A runtime whose jobs (a pull run here) use it too."""
    return build_runtime(read_settings(), install=True)


def _box(rt: Runtime) -> SecretBox:
    return SecretBox(rt.settings.secret_key)


@click.group("connectors")
def connectors() -> None:
    """Connector instances (Magento, Drupal, Exact Online, plugins)."""


@connectors.command("types")
def types_cmd() -> None:
    """List installed connector types and their settings (secrets marked)."""
    reg = registry.registry()
    for name, cls in sorted(reg.connectors.items()):
        click.echo(f"{name}: {cls.title or cls.__doc__ or ''}  streams: {', '.join(cls.streams)}")
        for field, schema in cls.schema().items():
            flags = [schema["type"]]
            flags += ["required"] if schema["required"] else []
            flags += ["secret"] if schema.get("secret") else []
            click.echo(f"  {field} ({', '.join(flags)}) {schema.get('description', '')}".rstrip())
    for name, problem in sorted(reg.broken.items()):
        click.echo(f"{name}: BROKEN: {problem}", err=True)


@connectors.command("add")
@click.argument("name")
@click.argument("connector_type", metavar="TYPE")
@click.option("--set", "values", multiple=True, metavar="KEY=VALUE", help="a setting")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML or JSON file with the settings",
)
@click.option("--secret", "secret_keys", multiple=True, metavar="KEY", help="prompt for it")
@click.option("--every", type=int, default=None, help="pull every N seconds (default: never)")
@click.option("--replace", is_flag=True, help="replace an existing instance of that name")
def add(
    name: str,
    connector_type: str,
    values: tuple[str, ...],
    config_file: Path | None,
    secret_keys: tuple[str, ...],
    every: int | None,
    replace: bool,
) -> None:
    """Configure instance NAME of connector TYPE; secrets are stored encrypted."""
    settings: dict[str, Any] = {}
    if config_file:
        loaded = yaml.safe_load(config_file.read_text()) or {}
        if not isinstance(loaded, dict):
            raise click.ClickException(f"{config_file}: expected a mapping of settings")
        settings.update(loaded)
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.ClickException(f"--set {item!r}: expected KEY=VALUE")
        settings[key.strip()] = value
    for key in secret_keys:
        settings[key] = click.prompt(key, hide_input=True)
    rt = _runtime()
    try:
        view = save_instance(
            rt.db,
            _box(rt),
            name,
            connector_type,
            settings,
            pull_interval_seconds=every,
            replace=replace,
        )
    except ConfigInvalid as exc:
        for problem in exc.problems:
            click.echo(f"{problem.field}: {problem.message}", err=True)
        raise click.ClickException(f"{len(exc.problems)} problem(s); nothing was saved") from None
    except HubError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"instance {name!r} ({connector_type}) saved")
    click.echo(f"  webhook: POST /connectors/{name}/webhook" if view.push else "  no webhooks")
    if view.streams:
        click.echo(f"  streams: {', '.join(view.streams)}; pull every: {every or 'never'}")


@connectors.command("apply")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def apply_cmd(path: Path) -> None:
    """Create or update the instances described in a YAML file.

    \N{BACKSPACE}
    shop:
      connector: magento
      every: 300
      settings:
        base_url: https://shop.example.com
        access_token: ${MAGENTO_TOKEN}   # from the environment: keep secrets out of files
    """
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise click.ClickException(f"{path}: expected a mapping of instance names")
    rt = _runtime()
    problems = 0
    for name, spec in doc.items():
        if not isinstance(spec, dict) or not spec.get("connector"):
            click.echo(f"{path}: {name}: needs 'connector' and 'settings'", err=True)
            problems += 1
            continue
        try:
            settings = {k: _expand(v) for k, v in (spec.get("settings") or {}).items()}
            save_instance(
                rt.db,
                _box(rt),
                str(name),
                str(spec["connector"]),
                settings,
                pull_interval_seconds=spec.get("every"),
                replace=True,
            )
            click.echo(f"{name}: saved")
        except ConfigInvalid as exc:
            for problem in exc.problems:
                click.echo(f"{path}: {name}.settings.{problem.field}: {problem.message}", err=True)
            problems += 1
        except (HubError, ValueError) as exc:
            click.echo(f"{path}: {name}: {exc}", err=True)
            problems += 1
    if problems:
        raise click.ClickException(f"{problems} instance(s) not saved")


def _expand(value: Any) -> Any:
    """``${VAR}`` in a setting is the environment variable's value (required to be set)."""
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, value)


@connectors.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(as_json: bool) -> None:
    """List instances (secret values masked)."""
    rt = _runtime()
    views = list_instances(rt.db, _box(rt))
    if as_json:
        click.echo(json.dumps([v.as_dict() for v in views], indent=2))
        return
    for v in views:
        state = "enabled" if v.enabled else "disabled"
        every = f"every {v.pull_interval_seconds}s" if v.pull_interval_seconds else "on demand"
        click.echo(f"{v.name}  {v.connector}  {state}  streams: {','.join(v.streams)} ({every})")


@connectors.command("test")
@click.argument("name")
def test_cmd(name: str) -> None:
    """Reach the remote with the stored credentials."""
    rt = _runtime()
    try:
        connector, _ = load_connector(rt.db, _box(rt), name)
        click.echo(connector.test_connection())
    except (ConnectorError, HubError) as exc:
        raise click.ClickException(f"{name}: {exc}") from None


@connectors.command("run")
@click.argument("name")
@click.option("--stream", "streams", multiple=True, help="stream to pull (default: all)")
@click.option("--wait/--no-wait", default=True, help="run here and wait (default) or enqueue")
def run_cmd(name: str, streams: tuple[str, ...], wait: bool) -> None:
    """Pull changes now; with --wait the run happens in this process and its result is shown."""
    rt = _runtime()
    try:
        connector, _ = load_connector(rt.db, _box(rt), name)
        chosen = list(streams) or list(connector.streams)
        run_ids = [start_run(rt, name, s, trigger="cli") for s in chosen]
    except (ConnectorError, HubError) as exc:
        raise click.ClickException(str(exc)) from None
    if not wait:
        click.echo(f"enqueued runs {', '.join(map(str, run_ids))}")
        return
    failed = False
    for run_id in run_ids:
        _take_job(rt, run_id)
        started = time.monotonic()
        result = run_pull(run_id, 1)
        while result.get("status") == "retrying":
            click.echo(f"run {run_id}: retrying in {result['retry_in']:.0f}s", err=True)
            time.sleep(result["retry_in"])
            attempt = _take_job(rt, run_id)
            result = run_pull(run_id, attempt)
        runs = {r["id"]: r for r in recent_runs(rt, name, 50)}
        r = runs.get(run_id, result)
        click.echo(
            f"run {run_id} {r['stream']}: {r['status']} in {time.monotonic() - started:.1f}s, "
            f"{r['facts_accepted']} new facts, {r['facts_duplicate']} duplicates, "
            f"cursor {r['cursor_before']} -> {r['cursor_after']}"
            + (f"; error: {r['error']}" if r.get("error") else "")
        )
        failed = failed or r["status"] != "succeeded"
    if failed:
        sys.exit(1)


def _take_job(rt: Any, run_id: int) -> int:
    """Remove the queued job of this run (we run it here instead); return its attempt."""
    for attempt in range(1, 20):
        try:
            job = Job.fetch(f"pull-{run_id}-{attempt}", connection=rt.redis)
        except NoSuchJobError:
            continue
        if job.get_status() in ("queued", "scheduled"):
            job.cancel()
            job.delete()
            return attempt
    return 1


@connectors.command("runs")
@click.argument("name")
@click.option("--limit", default=10, show_default=True)
def runs_cmd(name: str, limit: int) -> None:
    """Show the latest pull runs of an instance."""
    rt = _runtime()
    try:
        runs = recent_runs(rt, name, limit)
    except HubError as exc:
        raise click.ClickException(str(exc)) from None
    for r in runs:
        click.echo(
            f"{r['id']}  {r['stream']}  {r['status']}  attempts {r['attempts']}  "
            f"facts {r['facts_accepted']} new / {r['facts_duplicate']} dup  "
            f"cursor {r['cursor_after'] or r['cursor_before']}  {r['started_at']}"
            + (f"  error: {r['error']}" if r["error"] else "")
        )
