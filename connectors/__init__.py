"""Connector plugins: the contract (:mod:`connectors.base`) and the built-in connectors."""

from connectors.base import (
    ConfigField,
    Connector,
    ContractExample,
    Delivered,
    FieldKind,
    MemoryStateStore,
    Page,
    StateStore,
    WebhookAnswer,
    WebhookRequest,
)
from connectors.exceptions import (
    ConfigInvalid,
    ConfigProblem,
    ConnectorError,
    NotSupported,
    PayloadInvalid,
    RemoteRejected,
    RemoteUnavailable,
    SignatureInvalid,
)

__all__ = [
    "ConfigField",
    "ConfigInvalid",
    "ConfigProblem",
    "Connector",
    "ConnectorError",
    "ContractExample",
    "Delivered",
    "FieldKind",
    "MemoryStateStore",
    "NotSupported",
    "Page",
    "PayloadInvalid",
    "RemoteRejected",
    "RemoteUnavailable",
    "SignatureInvalid",
    "StateStore",
    "WebhookAnswer",
    "WebhookRequest",
]
