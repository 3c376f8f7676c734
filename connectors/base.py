"""The connector contract: what a plugin declares and implements.

A connector is a class registered in the ``hub.connectors`` entry point group. It declares a
``name``, its configuration fields (secrets marked) and the pull ``streams`` it offers, and
implements what it supports:

- push: :meth:`Connector.verify` checks an inbound request's signature on the raw body (in
  constant time), then :meth:`Connector.parse` turns the payload into facts;
- pull: :meth:`Connector.pull` yields pages of facts changed since a cursor; the hub stores
  the facts, then the page's cursor, so a restart neither skips nor makes new facts twice;
- :meth:`Connector.test_connection` tells an operator whether the credentials work.

The configuration is validated when the connector is built, with every problem reported at
once; secret values are never part of a message, a ``repr`` or :meth:`public_config`.
"""

from __future__ import annotations

import enum
import json
import re
import threading
from abc import ABC
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, final
from urllib.parse import urlsplit

from connectors.exceptions import ConfigInvalid, ConfigProblem, NotSupported, PayloadInvalid
from hub.facts import FactIn

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
SECRET_MASK = "********"


class FieldKind(enum.StrEnum):
    """The type of a configuration value."""

    STRING = "string"
    TEXT = "text"  # multi-line, such as a PEM key
    URL = "url"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class ConfigField:
    """One configuration setting of a connector; ``secret`` ones are encrypted and masked."""

    name: str
    kind: FieldKind = FieldKind.STRING
    required: bool = False
    secret: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    def as_schema(self) -> dict[str, Any]:
        """The field as JSON-schema-like data, for ``hub connectors types`` and the docs."""
        schema: dict[str, Any] = {"type": self.kind.value, "required": self.required}
        if self.secret:
            schema["secret"] = True
        if self.default is not None:
            schema["default"] = self.default
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.help:
            schema["description"] = self.help
        return schema


@dataclass(frozen=True)
class WebhookRequest:
    """An inbound request as a connector sees it: the raw body, headers (any case), query."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """The value of header ``name``, matched in any case; ``None`` if it is absent."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    @property
    def content_type(self) -> str:
        """The body's media type, lower-cased and without parameters; ``""`` if none is given."""
        return (self.header("Content-Type") or "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON; :class:`PayloadInvalid` if it is not."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadInvalid("", f"body is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class WebhookAnswer:
    """What the hub answers a remote's request, when the connector shapes it itself.

    ``body`` is JSON data (``None``: an empty body). A remote that expects its own format (Adobe
    Commerce's ``{"op": "success"}``), an echo for a validation challenge or an empty 200 for a
    ping are answers; the hub sends them as they are.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivered:
    """One fact of a delivery as the hub stored it: its id, ``accepted`` or ``duplicate``."""

    id: int
    status: str


@dataclass
class Page:
    """One page of pulled changes and the cursor to resume after it (``None``: unchanged)."""

    facts: list[FactIn]
    cursor: str | None


class StateStore(Protocol):
    """Durable per-instance state a connector keeps (OAuth tokens), stored encrypted.

    ``update`` runs ``change`` on the current state while holding a lock that other processes
    of the same instance respect, and persists the result before returning it: a rotated
    refresh token is saved before the access token that came with it is used.
    """

    def load(self) -> dict[str, Any]:
        """A copy of the current state; ``{}`` before anything was stored."""
        ...

    def update(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Apply ``change`` to the current state under the lock; persist and return the result."""
        ...


class MemoryStateStore:
    """A :class:`StateStore` in memory, for tests and for connectors built without the hub."""

    def __init__(self, initial: dict[str, Any] | None = None) -> None:
        self._state = dict(initial or {})
        self._lock = threading.Lock()

    def load(self) -> dict[str, Any]:
        """A copy of the current state."""
        return dict(self._state)

    def update(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Apply ``change`` under a lock; only threads of this one process are kept apart."""
        with self._lock:
            self._state = dict(change(dict(self._state)))
            return dict(self._state)


@dataclass
class ContractExample:
    """What the generated contract tests need to exercise a connector without its remote.

    ``sign(body, content_type)`` returns a request that carries ``body`` correctly signed for
    ``config``; ``webhooks`` are signed requests that must each parse into facts;
    ``malformed`` are (body, content type) pairs that, signed, must be refused as invalid;
    ``forged`` are requests ``verify`` must refuse (by default: each webhook, headers removed);
    ``empty`` are signed, valid deliveries that carry no fact (a ping, an event the connector
    ignores); ``handshakes`` are the remote's setup requests (a subscription's validation) that
    :meth:`Connector.handshake` must answer without any fact.
    """

    config: dict[str, Any]
    sign: Callable[[bytes, str], WebhookRequest] | None = None
    webhooks: list[WebhookRequest] = field(default_factory=list)
    malformed: list[tuple[bytes, str]] = field(default_factory=list)
    forged: list[WebhookRequest] = field(default_factory=list)
    empty: list[WebhookRequest] = field(default_factory=list)
    handshakes: list[WebhookRequest] = field(default_factory=list)


class Connector(ABC):
    """Base class of every connector; subclasses declare attributes and override methods."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    config_fields: ClassVar[tuple[ConfigField, ...]] = ()
    streams: ClassVar[tuple[str, ...]] = ()

    @final
    def __init__(
        self, instance: str, config: Mapping[str, Any], *, state: StateStore | None = None
    ) -> None:
        self.instance = instance
        self.config = self.validate_config(config)
        self.state: StateStore = state or MemoryStateStore()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.instance!r}>"

    # -- configuration -------------------------------------------------------------------

    @final
    @classmethod
    def validate_config(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration with defaults applied and values coerced; every problem at once."""
        problems: list[ConfigProblem] = []
        known = {f.name: f for f in cls.config_fields}
        for key in raw:
            if key not in known:
                problems.append(ConfigProblem(key, "unknown setting"))
        config: dict[str, Any] = {}
        for fld in cls.config_fields:
            value = raw.get(fld.name)
            if value is None or value == "":
                if fld.required:
                    problems.append(ConfigProblem(fld.name, "is required"))
                config[fld.name] = fld.default
                continue
            try:
                config[fld.name] = _coerce(fld, value)
            except ValueError as exc:
                problems.append(ConfigProblem(fld.name, str(exc)))
        if not problems:
            problems.extend(cls.check_config(config))
        if problems:
            raise ConfigInvalid(cls.name, problems)
        return config

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[ConfigProblem]:
        """Checks across fields (override); runs once every field is valid on its own."""
        return []

    @final
    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        """The names of the settings declared ``secret``."""
        return frozenset(f.name for f in cls.config_fields if f.secret)

    @final
    @classmethod
    def schema(cls) -> dict[str, Any]:
        """Every setting as :meth:`ConfigField.as_schema` describes it, by name."""
        return {f.name: f.as_schema() for f in cls.config_fields}

    @final
    def public_config(self) -> dict[str, Any]:
        """The configuration fit to show: secret values masked, unset ones left ``None``."""
        secrets = self.secret_fields()
        return {
            k: (SECRET_MASK if k in secrets and v not in (None, "") else v)
            for k, v in self.config.items()
        }

    # -- capabilities --------------------------------------------------------------------

    @final
    @property
    def supports_push(self) -> bool:
        """Whether the connector accepts webhooks: its class implements :meth:`parse`."""
        return type(self).parse is not Connector.parse

    @final
    @property
    def supports_pull(self) -> bool:
        """Whether the connector can pull: it declares ``streams`` and implements :meth:`pull`."""
        return bool(self.streams) and type(self).pull is not Connector.pull

    # -- push ----------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Raise :class:`SignatureInvalid` unless the raw request is signed by the remote.

        Runs before anything of the body is parsed; compare with ``hmac.compare_digest``.
        """
        raise NotSupported(f"{self.name} does not accept webhooks")

    def parse(self, request: WebhookRequest) -> list[FactIn]:
        """The facts a verified request carries; :class:`PayloadInvalid` names a bad field.

        Give every fact a ``source_id`` derived from the delivery (or the record's version),
        so that a replayed delivery becomes a duplicate fact rather than a second one. A valid
        delivery that carries nothing the hub keeps (a ping, an ignored event) gives ``[]``.
        """
        raise NotSupported(f"{self.name} does not accept webhooks")

    def handshake(self, request: WebhookRequest) -> WebhookAnswer | None:
        """The answer to a remote's setup request (a subscription's validation), or ``None``.

        Called before :meth:`verify`, because such requests are often unsigned: recognise them
        narrowly (an empty body, a challenge parameter) and answer without storing anything.
        ``None``, the default, means a delivery: it is verified and parsed.
        """
        return None

    def answer(self, request: WebhookRequest, delivered: list[Delivered]) -> WebhookAnswer | None:
        """The answer once the delivery's facts are committed; ``None``: the hub's own.

        The hub's own is 200 with ``{"facts": [{"id", "status"}]}``. Override for a remote
        that expects its own format.
        """
        return None

    def answer_invalid(
        self, request: WebhookRequest, error: PayloadInvalid
    ) -> WebhookAnswer | None:
        """The answer to a signed delivery ``parse`` refused; ``None``: the hub's 400.

        The hub records the refusal (log and the instance's last error) whatever the answer.
        Override when a remote treats any non-success answer as a reason to abort its own work
        (Adobe Commerce's required hooks abort a checkout).
        """
        return None

    # -- pull ----------------------------------------------------------------------------

    def pull(self, stream: str, cursor: str | None) -> Iterator[Page]:
        """Yield pages of facts changed since ``cursor`` (``None``: from the beginning).

        Raise :class:`RemoteUnavailable` for what a later retry can fix (the hub retries with
        backoff, never sooner than its ``retry_after``) and :class:`RemoteRejected` otherwise.
        """
        raise NotSupported(f"{self.name} cannot pull")

    def test_connection(self) -> str:
        """Reach the remote with the configured credentials; return a line for the operator."""
        raise NotSupported(f"{self.name} has no connection to test")

    # -- contract tests ------------------------------------------------------------------

    @classmethod
    def contract_example(cls) -> ContractExample | None:
        """Data for the generated contract tests (see :mod:`connectors.testing`)."""
        return None


def _coerce(fld: ConfigField, value: Any) -> Any:
    kind = fld.kind
    if kind in (FieldKind.STRING, FieldKind.TEXT, FieldKind.URL):
        if not isinstance(value, str):
            raise ValueError("expected text")
        value = value.strip() if kind is not FieldKind.TEXT else value
        if kind is FieldKind.URL:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("expected an http:// or https:// URL")
            value = value.rstrip("/")
        if fld.choices and value not in fld.choices:
            raise ValueError(f"expected one of {', '.join(fld.choices)}")
        return value
    if kind is FieldKind.BOOLEAN:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        raise ValueError("expected true or false")
    number: float
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value) if kind is FieldKind.INTEGER else float(value)
    except (TypeError, ValueError):
        raise ValueError(
            "expected a whole number" if kind is FieldKind.INTEGER else "expected a number"
        ) from None
    if fld.minimum is not None and number < fld.minimum:
        raise ValueError(f"must be at least {fld.minimum:g}")
    return number
