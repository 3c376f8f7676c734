"""``hub apikey create``: API keys for the REST and SOAP APIs."""

from __future__ import annotations

import click
from sqlalchemy.exc import IntegrityError

from hub.apikeys import create_api_key
from hub.cli.common import read_settings
from hub.db import Database


@click.group("apikey")
def apikey() -> None:
    """API keys for the REST API."""


@apikey.command("create")
@click.argument("name")
def apikey_create(name: str) -> None:
    """Create an API key; the key is printed once, alone on the last line."""
    database = Database(read_settings().resolved_database_url)
    database.upgrade()
    try:
        with database.session() as session:
            key = create_api_key(session, name)
    except IntegrityError:
        raise click.ClickException(f"an API key named {name!r} exists already") from None
    finally:
        database.dispose()
    click.echo(f"API key {name!r} created; store it now, it is not shown again:", err=True)
    click.echo(key)
