"""``POST /connectors/<instance>/webhook``: deliveries pushed by a remote system.

No API key: the connector checks the sender's signature on the raw body (401, nothing
stored), parses it (400 naming the field), and the answer comes only after the facts are
committed; a replayed delivery gives back the same facts as ``duplicate``. Managing the
instances is :mod:`hub.api.connectors`.
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
from hub import runtime
from hub.facts.ingest import notify, store_facts
from hub.integrations.secrets import SecretBox, SecretsUnreadable
from hub.integrations.store import InstanceError, load_connector
from hub.web import json_error as error

bp = Blueprint("public_webhooks", __name__, url_prefix="/connectors")
log = logging.getLogger(__name__)


def _box() -> SecretBox:
    return SecretBox(runtime.of(current_app).settings.secret_key)


@bp.post("/<instance>/webhook")
def webhook(instance: str) -> Any:
    """Verify, parse and store one delivery; 200 with the facts once they are committed."""
    rt = runtime.of(current_app)
    body = request.get_data(cache=False)
    try:
        connector, _ = load_connector(rt.db, _box(), instance)
    except InstanceError as exc:
        return error(404, "not_found", str(exc))
    except SecretsUnreadable as exc:
        log.error("webhook for %s: %s", instance, exc)
        return error(503, "unavailable", "this instance's secrets cannot be read")
    inbound = WebhookRequest(body, dict(request.headers), request.args.to_dict())
    try:
        connector.verify(inbound)
    except NotSupported as exc:
        return error(404, "not_found", str(exc))
    except SignatureInvalid as exc:
        log.warning("webhook for %s refused: %s", instance, exc)
        return error(401, "invalid_signature", str(exc))
    try:
        facts = connector.parse(inbound)
    except PayloadInvalid as exc:
        return error(400, "invalid_payload", exc.message, field=exc.field)
    except RecursionError:  # a JSON body nested ~1,000 levels: the parser's limit, not a bug
        return error(400, "invalid_payload", "the body is nested too deeply", field="")
    except RemoteUnavailable as exc:  # a record could not be fetched: let the sender retry
        response = error(503, "remote_unavailable", str(exc))
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after or 60))
        return response
    except (RemoteRejected, ConnectorError) as exc:
        log.error("webhook for %s failed: %s", instance, exc)
        return error(502, "remote_rejected", str(exc))
    stored = store_facts(rt.db, facts) if facts else []
    if stored:
        notify(rt.settings, rt.redis)  # at once: deliveries are few, senders wait anyway
    return jsonify({"facts": [{"id": s.id, "status": s.status} for s in stored]}), 200
