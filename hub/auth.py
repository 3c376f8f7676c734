"""API keys: created once, shown once, stored as SHA-256 digests, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db import get_db
from hub.models import ApiKey

KEY_PREFIX = "hub_"
F = TypeVar("F", bound=Callable[..., Any])
# A verified key is trusted for this long without a database round trip; a revoked key is
# therefore refused at the latest this many seconds after revocation.
CACHE_SECONDS = 30.0
_verified: dict[str, tuple[str, float]] = {}
_verified_lock = threading.Lock()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, name: str) -> str:
    """Store a new key under ``name`` and return the key itself (it is not kept)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, prefix=key[:12], key_hash=_digest(key)))
    return key


def check_api_key(session: Session, key: str) -> ApiKey | None:
    """The active key record for ``key``, or None.

    Looked up by a short prefix, then compared digest to digest with ``hmac.compare_digest``
    so the answer time does not tell how much of a guessed key was right.
    """
    digest = _digest(key)
    candidates = session.scalars(
        select(ApiKey).where(ApiKey.prefix == key[:12], ApiKey.revoked_at.is_(None))
    )
    found = None
    for candidate in candidates:
        if hmac.compare_digest(candidate.key_hash, digest):
            found = candidate
    return found


def require_api_key(view: F) -> F:
    """Answer 401 unless the request carries ``Authorization: Bearer <valid key>``."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return _unauthorized("missing API key: send Authorization: Bearer <key>")
        name = _verified_name(key.strip())
        if name is None:
            return _unauthorized("invalid or revoked API key")
        g.api_key_name = name
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _verified_name(key: str) -> str | None:
    """The name of a valid key, from a short-lived per-process cache or the database."""
    digest = _digest(key)
    now = time.monotonic()
    with _verified_lock:
        hit = _verified.get(digest)
    if hit is not None and hit[1] > now:
        return hit[0]
    with get_db().session() as session:
        record = check_api_key(session, key)
        name = record.name if record is not None else None
    if name is not None:
        with _verified_lock:
            if len(_verified) > 10_000:
                _verified.clear()
            _verified[digest] = (name, now + CACHE_SECONDS)
    return name


def _unauthorized(message: str) -> Any:
    response = jsonify({"error": "unauthorized", "message": message})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="hub"'
    return response
