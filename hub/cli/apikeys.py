"""``hub apikey create | list | revoke``: API keys for the REST and SOAP APIs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.exc import IntegrityError

from hub.apikeys import create_api_key, list_api_keys, revoke_api_key
from hub.cli.common import read_settings
from hub.db import Database


@click.group("apikey")
def apikey() -> None:
    """API keys for the REST and SOAP APIs."""


@contextmanager
def _database() -> Iterator[Database]:
    database = Database(read_settings().resolved_database_url)
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()


@apikey.command("create")
@click.argument("name")
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="SOURCE",
    help="A fact source the key may post (repeatable); the key then posts only these. "
    "Naming a connector's source (magento, drupal, ...) allows it for this key.",
)
def apikey_create(name: str, sources: tuple[str, ...]) -> None:
    """Create an API key; the key is printed once, alone on the last line."""
    with _database() as database:
        try:
            with database.session() as session:
                key = create_api_key(session, name, list(sources) or None)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--source'") from None
        except IntegrityError:
            raise click.ClickException(f"an API key named {name!r} exists already") from None
    scope = f" (sources: {', '.join(dict.fromkeys(sources))})" if sources else ""
    click.echo(f"API key {name!r} created{scope}; store it now, it is not shown again:", err=True)
    click.echo(key)


@apikey.command("list")
def apikey_list() -> None:
    """List the keys: name, prefix, created, revoked, sources (never the key itself)."""
    with _database() as database, database.session() as session:
        keys = list_api_keys(session)
    rows = [("NAME", "PREFIX", "CREATED", "REVOKED", "SOURCES")]
    for key in keys:
        rows.append(
            (
                key.name,
                key.prefix,
                key.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                key.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if key.revoked_at else "-",
                ",".join(key.sources) if key.sources is not None else "(any not reserved)",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@apikey.command("revoke")
@click.argument("name")
def apikey_revoke(name: str) -> None:
    """Revoke a key: every request with it is refused from the next one on."""
    with _database() as database, database.session() as session:
        revoked = revoke_api_key(session, name)
    if not revoked:
        raise click.ClickException(f"no active API key named {name!r}")
    click.echo(f"API key {name!r} revoked")
