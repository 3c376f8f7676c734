"""``/connectors``: the configured connector instances, their pull runs, starting a pull.

Webhooks of the same instances are unauthenticated (signed by the sender) and live in
:mod:`hub.public.webhooks`; everything here needs an API key.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from hub import jsoncodec, runtime
from hub.api.auth import require_api_key
from hub.integrations.pulls import recent_runs, start_run
from hub.integrations.secrets import SecretBox
from hub.integrations.store import InstanceError, list_instances, load_connector
from hub.web import json_error as error

bp = Blueprint("api_connectors", __name__, url_prefix="/connectors")


def _box() -> SecretBox:
    return SecretBox(runtime.of(current_app).settings.secret_key)


@bp.get("")
@require_api_key
def instances() -> Any:
    """Every configured instance, secrets masked."""
    return jsonify(
        {"instances": [v.as_dict() for v in list_instances(runtime.of(current_app).db, _box())]}
    )


@bp.get("/<instance>/runs")
@require_api_key
def runs(instance: str) -> Any:
    """The latest pull runs of an instance: status, facts made, cursor, error."""
    limit = min(max(request.args.get("limit", 20, type=int) or 20, 1), 200)
    try:
        return jsonify({"runs": recent_runs(runtime.of(current_app), instance, limit)})
    except InstanceError as exc:
        return error(404, "not_found", str(exc))


@bp.post("/<instance>/runs")
@require_api_key
def start(instance: str) -> Any:
    """Start a pull now: ``{"stream": "customers"}``, or every stream without a body."""
    raw = request.get_data(cache=False)
    try:
        body = jsoncodec.loads(raw, max_depth=jsoncodec.MAX_REQUEST_DEPTH) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        return error(400, "malformed_json", f"body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return error(400, "invalid_value", "the body must be a JSON object", field="")
    if body.get("stream") is not None and not isinstance(body["stream"], str):
        return error(400, "invalid_value", "must be a stream name", field="stream")
    try:
        connector, _ = load_connector(runtime.of(current_app).db, _box(), instance)
        streams = [body["stream"]] if body.get("stream") else list(connector.streams)
        ids = [start_run(runtime.of(current_app), instance, s, trigger="api") for s in streams]
    except InstanceError as exc:
        code = 404 if "no connector instance" in str(exc) else 400
        return error(code, "not_found" if code == 404 else "invalid_stream", str(exc))
    return jsonify({"runs": ids}), 202
