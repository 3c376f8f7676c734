"""The ``hub`` command: one group, each command group registered from its own module."""

from __future__ import annotations

import click

from hub.cli import apikeys, connectors, consent, db, rules, run


@click.group()
def main() -> None:
    """The contact hub: facts in, rules evaluated, actions out."""


for command in (
    run.up,
    run.serve,
    run.worker,
    run.scheduler_cmd,
    db.db,
    apikeys.apikey,
    rules.rules,
    connectors.connectors,
    consent.consent,
):
    main.add_command(command)
