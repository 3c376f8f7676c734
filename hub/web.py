"""What every web face answers with: JSON errors a caller can act on."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

# Row ids are 64-bit signed integers in both databases (PostgreSQL bigint, SQLite INTEGER).
MAX_ID = 2**63 - 1


def json_error(status: int, code: str, message: str, **extra: Any) -> Response:
    """``{"error": code, "message": message, ...extra}`` with ``status``."""
    response = jsonify({"error": code, "message": message, **extra})
    response.status_code = status
    return response


def http_error(exc: HTTPException) -> Response:
    """Every error answer is JSON, with a message a caller can act on (404, 405, 413, ...)."""
    message = exc.description or exc.name
    if exc.code == 413:
        message = "request body too large"
    return json_error(exc.code or 500, exc.name.lower().replace(" ", "_"), message)


def database_unavailable(exc: OperationalError) -> Response:
    """503 with ``Retry-After`` when the database connection failed under a request.

    A connection cut by a restart, a failover or ``pg_terminate_backend`` is seen by the first
    request that uses it; the pool drops it and the next request gets a new one. The caller
    is told to send again (facts with a ``source_id`` are stored once however often they
    come), never handed a 500 for what is the service's hiccup, not its input or a bug.
    """
    response = json_error(
        503,
        "database_unavailable",
        "the database did not answer; nothing of this request was acknowledged: send it again"
        " (facts with a source_id are stored once)",
    )
    response.headers["Retry-After"] = "1"
    return response


def ids_in_range(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Answer 404 for a path id past 64 bits (``/profiles/9223372036854775808``).

    Registered with ``url_value_preprocessor`` on the blueprints whose routes take ``<int:..._id>``:
    no row has such an id, and handing it to the database would overflow (a 500) instead.
    """
    for name, value in (values or {}).items():
        if name.endswith("_id") and isinstance(value, int) and value > MAX_ID:
            thing = name.removesuffix("_id")
            abort(json_error(404, "not_found", f"no {thing} with id {value}", field="id"))
