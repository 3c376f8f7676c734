"""``hub db upgrade``: the database schema."""

from __future__ import annotations

import click

from hub.cli.common import read_settings
from hub.db import Database


@click.group("db")
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all database migrations."""
    Database(read_settings().resolved_database_url).upgrade()
    click.echo("database is up to date")
