"""``POST /connectors/<instance>/webhook``: deliveries pushed by a remote system.

No API key: the connector checks the sender's signature on the raw body (401, nothing
stored), parses it (400 naming the field), and the answer comes only after the facts are
committed; a replayed delivery gives back the same facts as ``duplicate``. A remote's setup
request (a subscription's validation) is answered by the connector's ``handshake`` before any
signature check, and a connector may shape its answers in the remote's own format
(``Connector.answer``, ``Connector.answer_invalid``). A signed delivery that cannot be parsed
is kept whole (``refused_deliveries``), whatever the answer. Managing the instances is
:mod:`hub.api.connectors`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from connectors import registry
from connectors.base import Connector, Delivered, WebhookAnswer, WebhookRequest
from connectors.exceptions import (
    ConfigInvalid,
    ConnectorError,
    NotSupported,
    PayloadInvalid,
    RemoteRejected,
    RemoteUnavailable,
    SignatureInvalid,
)
from connectors.registry import UnknownConnector
from hub import jsoncodec, runtime
from hub.db import Database
from hub.facts.ingest import notify, store_facts
from hub.integrations.models import ConnectorInstance, RefusedDelivery
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
    loaded = _load(rt.db, instance)
    if isinstance(loaded, Response):
        return loaded
    connector, instance_id = loaded
    inbound = WebhookRequest(body, dict(request.headers), request.args.to_dict())
    try:
        setup = connector.handshake(inbound)
    except Exception:  # noqa: BLE001 - a plugin's fault is answered, not a 500
        return _plugin_failed(rt.db, None, instance, inbound, "handshake")
    if setup is not None:
        log.info("webhook for %s: answered the remote's setup request", instance)
        return _send(setup)
    try:
        connector.verify(inbound)
    except NotSupported as exc:
        return error(404, "not_found", str(exc))
    except SignatureInvalid as exc:
        log.warning("webhook for %s refused: %s", instance, exc)
        return error(401, "invalid_signature", str(exc))
    except Exception:  # noqa: BLE001 - unverified: nothing of it is kept
        return _plugin_failed(rt.db, None, instance, inbound, "verify")
    try:
        facts = connector.parse(inbound)
    except PayloadInvalid as exc:
        return _refused(rt.db, connector, instance_id, inbound, exc)
    except RecursionError:  # a JSON body nested ~1,000 levels: the parser's limit, not a bug
        return _refused(
            rt.db,
            connector,
            instance_id,
            inbound,
            PayloadInvalid("", "the body is nested too deeply"),
        )
    except RemoteUnavailable as exc:  # a record could not be fetched: let the sender retry
        response = error(503, "remote_unavailable", str(exc))
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after or 60))
        return response
    except (RemoteRejected, ConnectorError) as exc:
        log.error("webhook for %s failed: %s", instance, exc)
        return error(502, "remote_rejected", str(exc))
    except Exception:  # noqa: BLE001
        return _plugin_failed(rt.db, instance_id, instance, inbound, "parse")
    stored = store_facts(rt.db, facts) if facts else []
    if stored:
        notify(rt.settings, rt.redis)  # at once: deliveries are few, senders wait anyway
    delivered = [Delivered(s.id, s.status) for s in stored]
    try:
        shaped = connector.answer(inbound, delivered)
    except Exception:  # noqa: BLE001 - the facts are stored: answer the hub's own way
        log.exception("webhook for %s: the connector's answer failed", instance)
        shaped = None
    if shaped is not None:
        return _send(shaped)
    return jsonify({"facts": [{"id": d.id, "status": d.status} for d in delivered]}), 200


def _load(db: Database, instance: str) -> tuple[Connector, int] | Response:
    """The instance's connector, or the answer that says why there is none (never a 500)."""
    try:
        return load_connector(db, _box(), instance)
    except InstanceError as exc:
        return error(404, "not_found", str(exc))
    except UnknownConnector:
        kind = _kind_of(db, instance)
        reason = registry.registry().broken_reason(kind)
        if reason is not None:
            log.error("webhook for %s: connector %s failed to load: %s", instance, kind, reason)
            return _unavailable(f"the {kind} connector failed to load; see the hub's log")
        return error(404, "not_found", f"the {kind} connector of {instance!r} is not installed")
    except SecretsUnreadable as exc:
        log.error("webhook for %s: %s", instance, exc)
        return _unavailable("this instance's secrets cannot be read")
    except ConfigInvalid as exc:  # saved by an older version of the plugin
        log.error("webhook for %s: stored settings no longer valid: %s", instance, exc)
        return _unavailable("this instance's settings are no longer valid; see the hub's log")


def _kind_of(db: Database, instance: str) -> str:
    with db.session() as session:
        found = session.query(ConnectorInstance.connector).filter_by(name=instance).scalar()
    return str(found)


def _unavailable(message: str) -> Response:
    response = error(503, "unavailable", message)
    response.headers["Retry-After"] = "60"
    return response


def _send(answer: WebhookAnswer) -> Response:
    body = "" if answer.body is None else jsoncodec.dumps(answer.body)
    response = Response(body, status=answer.status, headers=dict(answer.headers))
    if answer.body is not None:
        response.content_type = "application/json"
    return response


def _keep(db: Database, instance_id: int, inbound: WebhookRequest, exc: PayloadInvalid) -> int:
    with db.session() as session:
        row = RefusedDelivery(
            instance_id=instance_id,
            field=exc.field or None,
            message=exc.message,
            content_type=inbound.header("Content-Type"),
            body=inbound.body,
        )
        session.add(row)
        session.flush()
        return row.id


def _refused(
    db: Database,
    connector: Connector,
    instance_id: int,
    inbound: WebhookRequest,
    exc: PayloadInvalid,
) -> Any:
    kept = _keep(db, instance_id, inbound, exc)
    log.warning(
        "webhook for %s: delivery refused (kept as refused delivery %d): %s: %s",
        connector.instance,
        kept,
        exc.field or "body",
        exc.message,
    )
    try:
        shaped = connector.answer_invalid(inbound, exc)
    except Exception:  # noqa: BLE001
        log.exception("webhook for %s: the connector's refusal answer failed", connector.instance)
        shaped = None
    if shaped is not None:
        return _send(shaped)
    return error(400, "invalid_payload", exc.message, field=exc.field, refused_delivery=kept)


def _plugin_failed(
    db: Database, instance_id: int | None, instance: str, inbound: WebhookRequest, step: str
) -> Response:
    """A connector raised what it should not: say so, log the trace, keep a verified delivery.

    Before the signature is verified (``instance_id`` None) nothing of the body is kept: an
    unauthenticated sender must not be able to fill the table.
    """
    log.exception("webhook for %s: the connector failed in %s", instance, step)
    if instance_id is None:
        return error(502, "connector_failed", f"the connector failed in {step}; see the hub's log")
    kept = _keep(db, instance_id, inbound, PayloadInvalid("", f"the connector failed in {step}"))
    return error(
        502,
        "connector_failed",
        f"the connector failed in {step}; the delivery is kept (refused delivery {kept})",
        refused_delivery=kept,
    )
