"""``webhook``: call another system over HTTP with a JSON body built from templates.

Sent through :func:`hub.outbound.send`: only to public addresses, or to those
``HUB_WEBHOOK_ALLOW`` lists, checked on the address connected to and on every redirect; a
refused URL is recorded ``failed`` and never retried (the configuration must change first).
URLs are logged and recorded with their secrets masked (:func:`hub.logs.mask_url`). A 5xx
answer, a timeout or a connection failure raises :class:`RetriableError`, so RQ's ``Retry``
sends it again with backoff; a 4xx answer is the other side refusing the request itself, so
it is recorded and never retried. A delivered call is recorded in the action ledger and not
sent again when its job runs twice.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub import outbound
from hub.actions.ledger import action_job, begin, settle
from hub.exceptions import RetriableError
from hub.logs import mask_url
from hub.models import ActionStatus
from hub.rules.actions import ActionSpec, Shown
from hub.runtime import Runtime
from hub.templates import render_value, template_problems

log = logging.getLogger(__name__)


class WebhookParams(BaseModel):
    """The request: URL, method, headers and JSON body, all of them templates."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8)
    method: Literal["POST", "PUT", "PATCH", "GET", "DELETE"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    timeout: float = Field(default=10.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "{{")):
            raise ValueError("must start with http:// or https://")
        return value


def check_webhook(params: WebhookParams, _templates: Path) -> list[str]:
    """Every template of the request compiles."""
    return (
        template_problems(params.url, "url")
        + template_problems(params.headers, "headers")
        + template_problems(params.body, "body")
    )


@action_job
def webhook(
    job_key: str, fact_id: int, profile_id: int, params: dict[str, Any], rule_name: str = ""
) -> str:
    """Send the request once it is accepted (2xx/3xx); retry on 5xx and timeouts only."""
    p = WebhookParams.model_validate(params)
    with begin(job_key, fact_id, profile_id, rule_name, done_before="already sent") as act:
        rt, context = act.rt, act.context
    url = str(render_value(p.url, context))
    headers = {k: str(v) for k, v in render_value(p.headers, context).items()}
    body = render_value(p.body, context)
    headers.setdefault("Idempotency-Key", job_key)
    data = None
    if body is not None and p.method != "GET":
        data = json.dumps(body, default=str)
        headers.setdefault("Content-Type", "application/json")
    shown = mask_url(url)
    allow = outbound.allow_list(rt.settings.webhook_allow)
    try:
        response = outbound.send(
            p.method, url, allow, headers=headers, data=data, timeout=p.timeout
        )
    except outbound.Refused as exc:
        return _give_up(rt, job_key, fact_id, f"{p.method} {shown}", f"URL refused: {exc}")
    except (requests.Timeout, requests.ConnectionError) as exc:
        # not chained: requests' message repeats the path and query, secrets included, and
        # RQ keeps and logs the whole traceback
        raise RetriableError(f"webhook {p.method} {shown}: {type(exc).__name__}") from None
    if response.status_code >= 500:
        raise RetriableError(f"webhook {p.method} {shown}: HTTP {response.status_code}")
    outcome = f"HTTP {response.status_code}"
    if response.status_code >= 400:
        return _give_up(rt, job_key, fact_id, f"{p.method} {shown}", outcome)
    result = f"sent: {outcome}"
    with rt.db.session() as session:
        settle(session, job_key, "webhook", ActionStatus.DONE, result, fact_id=fact_id)
    return result


def _give_up(rt: Runtime, job_key: str, fact_id: int, request: str, why: str) -> str:
    """Record the action failed for good (not retried) and say why in the log."""
    result = f"refused: {why} (not retried)"
    with rt.db.session() as session:
        settle(session, job_key, "webhook", ActionStatus.FAILED, result, fact_id=fact_id)
    log.warning("webhook %s refused: %s (not retried)", request, why)
    return result


def show_webhook(_profile: dict[str, Any], params: WebhookParams, context: dict[str, Any]) -> Shown:
    """In a scenario: the method and rendered URL (nothing is sent)."""
    return Shown("done", f"{params.method} {render_value(params.url, context)}")


WEBHOOK = ActionSpec(
    name="webhook", params=WebhookParams, job=webhook, check=check_webhook, show=show_webhook
)
