"""``hub consent reclassify``: profiles an earlier release subscribed by default lose it."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from hub.cli.common import read_settings
from hub.db import Database
from hub.profiles.consent import reclassify_defaults


@click.group("consent")
def consent() -> None:
    """Marketing consent: the ledger's operator tasks."""


@consent.command("reclassify")
@click.option(
    "--created-before",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="only profiles created before this date (UTC), e.g. the day of the upgrade",
)
@click.option("--apply", is_flag=True, help="change them; without it, only count them")
def reclassify(created_before: datetime | None, apply: bool) -> None:
    """Set `subscribed` profiles with no consent on record to `unconfirmed`.

    Before this release every new profile started `subscribed`. Those with no statement in
    the consent ledger have no proof of consent; each one changed is recorded in its ledger.
    """
    since = created_before.replace(tzinfo=UTC) if created_before else None
    database = Database(read_settings().resolved_database_url)
    try:
        database.upgrade()
        with database.session() as session:
            found = reclassify_defaults(session, created_before=since, apply=apply)
    finally:
        database.dispose()
    if apply:
        click.echo(f"{found} profile(s) set to unconfirmed; each change is in its consent ledger")
    else:
        click.echo(
            f"{found} profile(s) are subscribed with no consent on record; --apply changes them"
        )
