"""The actions a rule can take, each an RQ job with a validated parameter model.

An action is idempotent by its job id (fact, rule, action index): a job run twice, or a fact
evaluated twice, takes effect once. Every job takes ``(job_key, fact_id, profile_id, params,
rule_name)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from hub.actions.emit import EmitParams, check_emit
from hub.actions.mail import SendMailParams, check_send_mail
from hub.actions.profile import (
    ConsentParams,
    CreateProfileParams,
    UpdateProfileParams,
    check_consent,
    check_create_profile,
    check_update_profile,
)
from hub.actions.webhook import WebhookParams, check_webhook
from hub.queue import ACTIONS_QUEUE, MAIL_QUEUE


@dataclass(frozen=True)
class ActionSpec:
    """What the rule loader and the evaluator need to know about one action."""

    name: str
    params: type[BaseModel]
    job: str  # dotted path of the RQ job function
    queue: str
    check: Callable[[BaseModel, Path], list[str]]


def _spec(
    name: str, params: type[BaseModel], module: str, check: Callable, queue: str = ACTIONS_QUEUE
) -> ActionSpec:  # type: ignore[type-arg]
    return ActionSpec(name, params, f"hub.actions.{module}.{name}", queue, check)


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        _spec("update_profile", UpdateProfileParams, "profile", check_update_profile),
        _spec("create_profile", CreateProfileParams, "profile", check_create_profile),
        _spec("unsubscribe", ConsentParams, "profile", check_consent),
        _spec("resubscribe", ConsentParams, "profile", check_consent),
        _spec("send_mail", SendMailParams, "mail", check_send_mail, MAIL_QUEUE),
        _spec("webhook", WebhookParams, "webhook", check_webhook),
        _spec("emit", EmitParams, "emit", check_emit),
    )
}
