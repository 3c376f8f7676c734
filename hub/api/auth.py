"""``require_api_key``: the API key check in front of the REST endpoints.

Every endpoint under ``/api/v1`` and ``/connectors`` that is not a webhook answers 401
without ``Authorization: Bearer <key>`` of an active key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, g, request

from hub import runtime
from hub.apikeys import check_api_key, digest
from hub.web import json_error

F = TypeVar("F", bound=Callable[..., Any])
# A verified key is trusted for this long without a database round trip; a revoked key is
# therefore refused at the latest this many seconds after revocation.
CACHE_SECONDS = 30.0
_verified: dict[str, tuple[str, float]] = {}
_verified_lock = threading.Lock()


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
    key_digest = digest(key)
    now = time.monotonic()
    with _verified_lock:
        hit = _verified.get(key_digest)
    if hit is not None and hit[1] > now:
        return hit[0]
    with runtime.of(current_app).db.session() as session:
        record = check_api_key(session, key)
        name = record.name if record is not None else None
    if name is not None:
        with _verified_lock:
            if len(_verified) > 10_000:
                _verified.clear()
            _verified[key_digest] = (name, now + CACHE_SECONDS)
    return name


def _unauthorized(message: str) -> Response:
    response = json_error(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="hub"'
    return response
