"""``emit``: raise a new fact about the same profile, its data templates over fact and profile.

The fact is stored whether or not a rule listens (rules may count it in history), with a
source id derived from the job (a job run twice raises one fact) and ``data.caused_by``, so
that a chain of emits stops at :data:`hub.actions.hub_facts.MAX_CHAIN_DEPTH`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.actions.hub_facts import raise_fact
from hub.actions.ledger import action_job, begin
from hub.facts.schema import FACT_TYPE
from hub.rules.actions import ActionSpec, Raised, Shown
from hub.templates import render_value, template_problems


class EmitParams(BaseModel):
    """The fact type to raise and its data."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(pattern=FACT_TYPE.pattern)
    data: dict[str, Any] = Field(default_factory=dict)


def check_emit(params: EmitParams, _templates: Path) -> list[str]:
    """The data's templates compile."""
    return template_problems(params.data, "data")


@action_job
def emit(
    job_key: str, fact_id: int, profile_id: int, params: dict[str, Any], rule_name: str = ""
) -> str:
    """Raise a new fact about the same profile; its data may use templates over fact/profile."""
    p = EmitParams.model_validate(params)
    with begin(job_key, fact_id, profile_id, rule_name) as act:
        outcome = raise_fact(
            act.rt,
            (p.type, render_value(p.data, act.context)),
            profile=act.context["profile"],
            source_id=job_key,
            cause_fact=act.context["fact"],
            rule_name=rule_name,
            session=act.session,
        )
        act.done("emit", outcome)
    return outcome


def show_emit(_profile: dict[str, Any], params: EmitParams, context: dict[str, Any]) -> Shown:
    """In a scenario: the fact raised, fed back to the rules."""
    return Shown(
        "done", params.type, (Raised(params.type, render_value(params.data, context), True),)
    )


EMIT = ActionSpec(name="emit", params=EmitParams, job=emit, check=check_emit, show=show_emit)
