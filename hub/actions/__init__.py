"""The actions a rule can take, each an RQ job with a validated parameter model.

An action is idempotent by its job id (fact, rule, action index): a job run twice, or a fact
evaluated twice, takes effect once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from hub.actions.mail import SendMailParams, check_send_mail
from hub.actions.profile import UpdateProfileParams, check_update_profile
from hub.queue import ACTIONS_QUEUE, MAIL_QUEUE


@dataclass(frozen=True)
class ActionSpec:
    """What the rule loader and the evaluator need to know about one action."""

    name: str
    params: type[BaseModel]
    job: str  # dotted path of the RQ job function
    queue: str
    check: Callable[[BaseModel, Path], list[str]]


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(
            "update_profile",
            UpdateProfileParams,
            "hub.actions.profile.update_profile",
            ACTIONS_QUEUE,
            check_update_profile,  # type: ignore[arg-type]
        ),
        ActionSpec(
            "send_mail",
            SendMailParams,
            "hub.actions.mail.send_mail",
            MAIL_QUEUE,
            check_send_mail,  # type: ignore[arg-type]
        ),
    )
}
