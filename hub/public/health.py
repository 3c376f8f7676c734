"""``/healthz``: can this process reach its database and Redis?"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from hub import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    """200 with ``status: ok`` if the database and Redis answer, else 503 naming which not."""
    checks: dict[str, str] = {}
    try:
        runtime.of(current_app).db.ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        runtime.of(current_app).redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(
        {"status": "ok" if healthy else "unavailable", **checks}
    ), 200 if healthy else 503
