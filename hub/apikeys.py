"""API keys: created once, shown once, stored as SHA-256 digests, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import ApiKey

KEY_PREFIX = "hub_"


def digest(key: str) -> str:
    """The SHA-256 digest a key is stored and cached by."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, name: str) -> str:
    """Store a new key under ``name`` and return the key itself (it is not kept)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, prefix=key[:12], key_hash=digest(key)))
    return key


def check_api_key(session: Session, key: str) -> ApiKey | None:
    """The active key record for ``key``, or None.

    Looked up by a short prefix, then compared digest to digest with ``hmac.compare_digest``
    so the answer time does not tell how much of a guessed key was right.
    """
    key_digest = digest(key)
    candidates = session.scalars(
        select(ApiKey).where(ApiKey.prefix == key[:12], ApiKey.revoked_at.is_(None))
    )
    found = None
    for candidate in candidates:
        if hmac.compare_digest(candidate.key_hash, key_digest):
            found = candidate
    return found
