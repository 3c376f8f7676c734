"""HTTP for connectors: inbound webhooks, and the instances and runs for API clients.

``POST /connectors/<instance>/webhook`` reads the raw body, has the connector check its
signature (401, nothing stored), parse it (400 naming the field), and answers only after the
facts are committed; a replayed delivery gives back the same facts as ``duplicate``. The other
routes need an API key.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from connectors.base import WebhookRequest
from connectors.exceptions import (
    ConnectorError,
    NotSupported,
    PayloadInvalid,
    RemoteRejected,
    RemoteUnavailable,
    SignatureInvalid,
)
from hub.auth import require_api_key
from hub.connector_store import InstanceError, list_instances, load_connector
from hub.db import get_db
from hub.facts.ingest import notify, store_facts
from hub.runtime import Runtime
from hub.secrets_box import SecretBox, SecretsUnreadable

bp = Blueprint("connectors", __name__, url_prefix="/connectors")
log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str, **extra: Any) -> Any:
    response = jsonify({"error": code, "message": message, **extra})
    response.status_code = status
    return response


def _runtime() -> Runtime:
    """The web process's own database and Redis, in the shape pull functions take."""
    return Runtime(
        settings=current_app.config["HUB_SETTINGS"],
        db=get_db(),
        redis=current_app.extensions["hub.redis"],
    )


def _box() -> SecretBox:
    return SecretBox(current_app.config["HUB_SETTINGS"].secret_key)


@bp.post("/<instance>/webhook")
def webhook(instance: str) -> Any:
    """Verify, parse and store one delivery; 200 with the facts once they are committed."""
    body = request.get_data(cache=False)
    try:
        connector, _ = load_connector(get_db(), _box(), instance)
    except InstanceError as exc:
        return _error(404, "not_found", str(exc))
    except SecretsUnreadable as exc:
        log.error("webhook for %s: %s", instance, exc)
        return _error(503, "unavailable", "this instance's secrets cannot be read")
    inbound = WebhookRequest(body, dict(request.headers), request.args.to_dict())
    try:
        connector.verify(inbound)
    except NotSupported as exc:
        return _error(404, "not_found", str(exc))
    except SignatureInvalid as exc:
        log.warning("webhook for %s refused: %s", instance, exc)
        return _error(401, "invalid_signature", str(exc))
    try:
        facts = connector.parse(inbound)
    except PayloadInvalid as exc:
        return _error(400, "invalid_payload", exc.message, field=exc.field)
    except RemoteUnavailable as exc:  # a record could not be fetched: let the sender retry
        response = _error(503, "remote_unavailable", str(exc))
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after or 60))
        return response
    except (RemoteRejected, ConnectorError) as exc:
        log.error("webhook for %s failed: %s", instance, exc)
        return _error(502, "remote_rejected", str(exc))
    stored = store_facts(get_db(), facts) if facts else []
    if stored:
        notify(current_app.config["HUB_SETTINGS"], current_app.extensions["hub.redis"])
    return jsonify({"facts": [{"id": s.id, "status": s.status} for s in stored]}), 200


@bp.get("")
@require_api_key
def instances() -> Any:
    """Every configured instance, secrets masked."""
    return jsonify({"instances": [v.as_dict() for v in list_instances(get_db(), _box())]})


@bp.get("/<instance>/runs")
@require_api_key
def runs(instance: str) -> Any:
    """The latest pull runs of an instance: status, facts made, cursor, error."""
    from hub.pull import recent_runs

    limit = min(max(request.args.get("limit", 20, type=int) or 20, 1), 200)
    try:
        return jsonify({"runs": recent_runs(_runtime(), instance, limit)})
    except InstanceError as exc:
        return _error(404, "not_found", str(exc))


@bp.post("/<instance>/runs")
@require_api_key
def start(instance: str) -> Any:
    """Start a pull now: ``{"stream": "customers"}``, or every stream without a body."""
    from hub.pull import start_run

    body = request.get_json(silent=True) or {}
    try:
        connector, _ = load_connector(get_db(), _box(), instance)
        streams = [body["stream"]] if body.get("stream") else list(connector.streams)
        ids = [start_run(_runtime(), instance, s, trigger="api") for s in streams]
    except InstanceError as exc:
        code = 404 if "no connector instance" in str(exc) else 400
        return _error(code, "not_found" if code == 404 else "invalid_stream", str(exc))
    return jsonify({"runs": ids}), 202
