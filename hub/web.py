"""What every web face answers with: JSON errors a caller can act on."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException


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
