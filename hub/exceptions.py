"""Errors of the hub, kept apart by whether retrying can help."""

from __future__ import annotations


class HubError(Exception):
    """Base class of every error the hub raises on purpose."""


class ConfigError(HubError):
    """A setting is missing or has a value the hub cannot use."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class RetriableError(HubError):
    """A temporary failure (a service down, a timeout): the job is retried."""


class FatalError(HubError):
    """A failure that retrying cannot fix (bad data, a missing template)."""


class InputError(FatalError):
    """A caller's request is wrong; ``code`` is stable, ``field`` names the culprit.

    The profile service raises it; REST answers it as JSON (``error``, ``field``, ``message``)
    and SOAP as a fault ``Client.<Code>``, so both APIs give the same error for the same input.
    """

    status = 400

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.code = code
        self.field = field
        self.message = message


class NotFoundError(InputError):
    """The profile (or other thing) a request names does not exist."""

    status = 404

    def __init__(self, field: str, message: str) -> None:
        super().__init__("not_found", field, message)


class ConflictError(InputError):
    """The request would break a uniqueness rule, such as a second profile for one email."""

    status = 409

    def __init__(self, field: str, message: str) -> None:
        super().__init__("already_exists", field, message)
