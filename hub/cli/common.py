"""What every ``hub`` command shares: settings, the embedded Redis, a runtime, valid rules."""

from __future__ import annotations

import os
from pathlib import Path

import click

from hub import config, runtime
from hub.actions import ACTIONS
from hub.config import Settings
from hub.exceptions import ConfigError
from hub.queue import embedded_redis_url
from hub.rules.engine import RuleEngine
from hub.rules.model import RuleSet
from hub.rules.reader import check_rules
from hub.runtime import Runtime


def read_settings() -> Settings:
    """The settings of ``HUB_*`` variables; a bad value ends the command naming the variable."""
    try:
        return config.from_env()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def embedded(current: Settings) -> Settings:
    """Start the embedded Redis if no HUB_REDIS_URL is set, and hand its URL to children."""
    if current.redis_url:
        return current
    url = embedded_redis_url(current.home)
    os.environ["HUB_REDIS_URL"] = url
    return current.with_overrides(redis_url=url)


def build_runtime(current: Settings, *, install: bool = False) -> Runtime:
    """A runtime for a command (the embedded Redis started if need be), its schema upgraded.

    With ``install``, jobs the command runs in this process use it too.
    """
    rt = Runtime.build(embedded(current), ACTIONS)
    rt.db.upgrade()
    if install:
        runtime.install(rt)
    return rt


def ruleset_or_exit(path: Path, why: str | None = None) -> RuleSet:
    """The rule set under ``path``, read and checked; if invalid, print each problem, exit 1."""
    ruleset, problems = check_rules(path, ACTIONS)
    if problems:
        for problem in problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(why or f"the rule files under {path} are invalid")
    return ruleset


def load_engine_or_exit(path: Path) -> RuleEngine:
    """The engine of the rule directory ``path``, for the tools that match facts."""
    return RuleEngine(ruleset_or_exit(path))
