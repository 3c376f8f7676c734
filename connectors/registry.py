"""Finding connectors: every class in the ``hub.connectors`` entry point group, loaded once.

Built-in connectors are registered in the hub's own ``pyproject.toml`` exactly as a third-party
plugin registers its own, so there is one way in. A plugin that fails to load is reported by
name instead of taking the hub down with it.
"""

from __future__ import annotations

import difflib
import logging
import threading
from dataclasses import dataclass
from importlib.metadata import entry_points

from connectors.base import NAME, Connector
from connectors.exceptions import ConnectorError

GROUP = "hub.connectors"
log = logging.getLogger(__name__)


class UnknownConnector(ConnectorError):
    """No connector of that name is installed."""


@dataclass(frozen=True)
class Registry:
    """The installed connectors by name, and the entry points that failed to load."""

    connectors: dict[str, type[Connector]]
    broken: dict[str, str]

    @property
    def names(self) -> frozenset[str]:
        """Every installed connector's name, those that failed to load included.

        Their sources are reserved for them (hub.apikeys): every integration is an instance
        of one, broken or not.
        """
        return frozenset(self.connectors) | frozenset(self.broken)

    def broken_reason(self, name: str) -> str | None:
        """Why the connector ``name`` failed to load, or ``None`` (loaded, or not installed)."""
        return self.broken.get(name)

    def get(self, name: str) -> type[Connector]:
        """The connector class called ``name``; :class:`UnknownConnector` names those installed."""
        try:
            return self.connectors[name]
        except KeyError:
            pass
        if name in self.broken:
            raise UnknownConnector(
                f"connector {name!r} is installed but failed to load: {self.broken[name]}"
            )
        known = ", ".join(sorted(self.connectors)) or "none"
        close = difflib.get_close_matches(name, list(self.connectors), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownConnector(f"no connector named {name!r} (installed: {known}){hint}")


_registry: Registry | None = None
_lock = threading.Lock()


def registry() -> Registry:
    """The registry of this process, built from the entry points on first use."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = load()
        return _registry


def get(name: str) -> type[Connector]:
    """The installed connector class called ``name`` (see :meth:`Registry.get`)."""
    return registry().get(name)


def load() -> Registry:
    """Import every entry point of the group; check that each is a well-formed connector."""
    found: dict[str, type[Connector]] = {}
    broken: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the hub
            broken[ep.name] = f"cannot import {ep.value}: {type(exc).__name__}: {exc}"
            log.error("connector %s: %s", ep.name, broken[ep.name])
            continue
        problem = _check(ep.name, cls)
        if problem:
            broken[ep.name] = problem
            log.error("connector %s: %s", ep.name, problem)
        elif ep.name in found and found[ep.name] is not cls:
            broken[ep.name] = f"registered twice ({ep.value})"
        else:
            found[ep.name] = cls
    return Registry(found, broken)


def _check(ep_name: str, cls: object) -> str | None:
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        return "is not a subclass of connectors.base.Connector"
    name = getattr(cls, "name", None)
    if name != ep_name:
        return f"entry point name {ep_name!r} differs from the class's name {name!r}"
    if not NAME.match(ep_name):
        return "name must be lower-case letters, digits, _ and -, starting with a letter"
    return None
