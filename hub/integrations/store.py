"""Configured connector instances: saving them (secrets sealed), and building their connectors.

An instance's configuration is validated by its connector class before anything is written,
and split in two: plain settings, and the secret ones sealed with
:class:`~hub.integrations.secrets.SecretBox`.
Nothing here returns or logs a secret value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from connectors import registry
from connectors.base import Connector
from hub.db import Database
from hub.exceptions import HubError
from hub.integrations.models import ConnectorInstance, ConnectorState
from hub.integrations.secrets import SecretBox

INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class InstanceError(HubError):
    """An instance cannot be saved or found (bad name, unknown, exists already)."""


@dataclass(frozen=True)
class InstanceView:
    """An instance as the CLI and API show it: secrets masked."""

    name: str
    connector: str
    enabled: bool
    pull_interval_seconds: int | None
    config: dict[str, Any]
    streams: tuple[str, ...]
    push: bool

    def as_dict(self) -> dict[str, Any]:
        """The view as JSON data."""
        return {
            "name": self.name,
            "connector": self.connector,
            "enabled": self.enabled,
            "pull_interval_seconds": self.pull_interval_seconds,
            "config": self.config,
            "streams": list(self.streams),
            "push": self.push,
        }


def save_instance(
    db: Database,
    box: SecretBox,
    name: str,
    connector: str,
    config: Mapping[str, Any],
    *,
    pull_interval_seconds: int | None = None,
    replace: bool = False,
) -> InstanceView:
    """Validate and store an instance; raise ``ConfigInvalid`` with every problem at once.

    Replacing an instance keeps its cursors (no re-import); changed settings drop its OAuth
    state (new credentials come with a new refresh token), unchanged ones keep it.
    """
    if not INSTANCE_NAME.match(name):
        raise InstanceError(f"instance name {name!r} must be 1-64 of a-z, 0-9, _ and -")
    cls = registry.get(connector)
    clean = cls.validate_config(config)
    secret_names = cls.secret_fields()
    public = {k: v for k, v in clean.items() if k not in secret_names}
    secrets = {k: v for k, v in clean.items() if k in secret_names and v is not None}
    with db.session() as session:
        row = session.scalar(select(ConnectorInstance).where(ConnectorInstance.name == name))
        if row is not None and not replace:
            raise InstanceError(f"an instance named {name!r} exists already (use --replace)")
        if row is None:
            row = ConnectorInstance(name=name, connector=connector)
            session.add(row)
        elif row.connector != connector:
            raise InstanceError(f"instance {name!r} is a {row.connector} connector")
        elif _set(dict(row.settings or {}) | box.open(row.secrets)) == _set(clean):
            # same credentials: keep the OAuth state (a rotated refresh token lives there)
            row.pull_interval_seconds = pull_interval_seconds
            row.enabled = True
            return view(cls(name, clean), interval=pull_interval_seconds)
        row.settings = public
        row.secrets = box.seal(secrets)
        row.enabled = True
        row.pull_interval_seconds = pull_interval_seconds
        session.flush()
        state = session.get(ConnectorState, row.id)
        if state is None:
            session.add(ConnectorState(instance_id=row.id, sealed=None, version=0))
        else:
            state.sealed = None
            state.version += 1
    return view(cls(name, clean), interval=pull_interval_seconds)


def load_connector(db: Database, box: SecretBox, name: str) -> tuple[Connector, int]:
    """The connector of an instance, with its secrets and a database-backed state store."""
    with db.session() as session:
        row = session.scalar(select(ConnectorInstance).where(ConnectorInstance.name == name))
        if row is None:
            raise InstanceError(f"no connector instance named {name!r}")
        if not row.enabled:
            raise InstanceError(f"connector instance {name!r} is disabled")
        cls = registry.get(row.connector)
        config = dict(row.settings or {}) | box.open(row.secrets)
        instance_id = row.id
    return cls(name, config, state=DbStateStore(db, box, instance_id)), instance_id


def list_instances(db: Database, box: SecretBox) -> list[InstanceView]:
    """Every configured instance, by name, as operators see it (secrets masked).

    Raises UnknownConnector for an instance whose connector is no longer installed, and
    SecretsUnreadable if ``HUB_SECRET_KEY`` changed since its secrets were saved.
    """
    with db.session() as session:
        rows = session.scalars(select(ConnectorInstance).order_by(ConnectorInstance.name)).all()
    out = []
    for row in rows:
        cls = registry.get(row.connector)
        connector = cls(row.name, dict(row.settings or {}) | box.open(row.secrets))
        out.append(view(connector, enabled=row.enabled, interval=row.pull_interval_seconds))
    return out


def view(
    connector: Connector, *, enabled: bool = True, interval: int | None = None
) -> InstanceView:
    """How ``connector`` is shown: its public configuration, and the streams and push it offers."""
    return InstanceView(
        name=connector.instance,
        connector=connector.name,
        enabled=enabled,
        pull_interval_seconds=interval,
        config=connector.public_config(),
        streams=connector.streams if connector.supports_pull else (),
        push=connector.supports_push,
    )


class DbStateStore:
    """A connector's durable state in ``connector_states``, sealed, updated under a row lock.

    ``update`` locks the row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write lock,
    which the hub takes at ``BEGIN``), runs ``change`` and commits before returning, so that
    two workers never both spend the same refresh token and a rotated one is never lost.
    """

    def __init__(self, db: Database, box: SecretBox, instance_id: int) -> None:
        self._db = db
        self._box = box
        self._instance_id = instance_id

    def __repr__(self) -> str:
        return f"<DbStateStore instance={self._instance_id}>"

    def load(self) -> dict[str, Any]:
        """The instance's state, decrypted; ``{}`` before anything was stored."""
        with self._db.session() as session:
            row = session.get(ConnectorState, self._instance_id)
            return self._box.open(row.sealed if row else None)

    def update(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Run ``change`` on the state under the row lock; commit the result and return it."""
        with self._db.session() as session:
            row = session.scalar(
                select(ConnectorState)
                .where(ConnectorState.instance_id == self._instance_id)
                .with_for_update()
            )
            if row is None:
                row = ConnectorState(instance_id=self._instance_id, sealed=None, version=0)
                session.add(row)
            new = change(self._box.open(row.sealed))
            row.sealed = self._box.seal(new)
            row.version = (row.version or 0) + 1
        return new


def _set(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if v is not None}
