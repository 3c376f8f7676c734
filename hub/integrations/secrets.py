"""Encryption of connector secrets at rest, keyed by ``HUB_SECRET_KEY``.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with a key derived from the secret by
HKDF-SHA256, so the hub's one secret is never used as a raw key and other uses of it (session
signing) get unrelated keys. A changed ``HUB_SECRET_KEY`` makes stored secrets unreadable, and
says so, rather than silently yielding garbage.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.exceptions import FatalError

_INFO = b"contact-hub connector secrets v1"


class SecretsUnreadable(FatalError):
    """Stored secrets cannot be decrypted: HUB_SECRET_KEY differs from when they were saved."""


class SecretBox:
    """Encrypts and decrypts JSON objects with a key derived from the hub's secret."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("HUB_SECRET_KEY is empty: connector secrets cannot be stored")
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            secret_key.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def __repr__(self) -> str:
        return "<SecretBox>"

    def seal(self, values: dict[str, Any]) -> str:
        """``values`` encrypted as one text token, for storing."""
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode("ascii")

    def open(self, token: str | None) -> dict[str, Any]:
        """The values sealed in ``token`` (``{}`` for none).

        Raises:
            SecretsUnreadable: ``HUB_SECRET_KEY`` is not the key the values were sealed with.
        """
        if not token:
            return {}
        try:
            return json.loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken:
            raise SecretsUnreadable(
                "stored connector secrets cannot be decrypted: HUB_SECRET_KEY has changed "
                "since they were saved; restore it or configure the connector again"
            ) from None
