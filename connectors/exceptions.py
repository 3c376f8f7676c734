"""Errors a connector raises, kept apart by what the hub does with them.

The webhook endpoint turns :class:`SignatureInvalid` into 401 and :class:`PayloadInvalid` into
400 (naming the field); a pull job retries :class:`RemoteUnavailable` with backoff (waiting at
least ``retry_after``) and records :class:`RemoteRejected` as a failed run at once.
"""

from __future__ import annotations

from hub.exceptions import FatalError, HubError, RetriableError


class ConnectorError(HubError):
    """Base class of every error a connector raises on purpose."""


class ConfigProblem:
    """One problem with one configuration field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def __repr__(self) -> str:
        return f"ConfigProblem({self.field!r}, {self.message!r})"


class ConfigInvalid(ConnectorError):
    """A connector's configuration is invalid; ``problems`` holds every problem found at once.

    Messages name fields, never their values, so a secret cannot leak through an error.
    """

    def __init__(self, connector: str, problems: list[ConfigProblem]) -> None:
        self.connector = connector
        self.problems = problems
        lines = "; ".join(str(p) for p in problems)
        super().__init__(f"{connector} configuration: {lines}")


class SignatureInvalid(ConnectorError):
    """An inbound request is not signed by the remote system (wrong, missing or stale)."""


class PayloadInvalid(ConnectorError):
    """A payload is malformed; ``field`` is the path of the offending field in it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class NotSupported(ConnectorError):
    """The connector does not do this (push on a pull-only connector, an unknown stream)."""


class RemoteUnavailable(ConnectorError, RetriableError):
    """The remote timed out, answered 5xx or asked us to slow down: try again later.

    ``retry_after`` is the remote's own wait in seconds (``Retry-After`` or a rate-limit
    reset), or ``None`` when it gave none; a retry never comes sooner than that.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RemoteRejected(ConnectorError, FatalError):
    """The remote refused the request in a way retrying cannot fix (bad credentials, 4xx)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
