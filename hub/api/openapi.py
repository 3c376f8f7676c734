"""``GET /api/v1/openapi.json``: the OpenAPI description of the REST API (``openapi.yaml``)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify

bp = Blueprint("api_openapi", __name__, url_prefix="/api/v1")
OPENAPI_FILE = Path(__file__).parent / "openapi.yaml"


@bp.get("/openapi.json")
def openapi() -> Response:
    """The description, as JSON."""
    return jsonify(_openapi())


@functools.cache
def _openapi() -> dict[str, Any]:
    """The description, parsed once per process (parsing the YAML took 70 ms a request)."""
    description: dict[str, Any] = yaml.safe_load(OPENAPI_FILE.read_text())
    return description
