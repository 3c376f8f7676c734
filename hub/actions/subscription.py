"""``unsubscribe`` and ``resubscribe``: a rule withdraws or gives back marketing consent.

A pair declared together because each is the other's mirror: the status changes once (the
ledger row commits with it) and ``profile.unsubscribed`` / ``profile.resubscribed`` follows,
with ``data.previous_status``. A bounced address is never resubscribed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from hub.actions.hub_facts import raise_fact
from hub.actions.ledger import action_job, begin
from hub.facts.own import OwnFact, ProfileResubscribed, ProfileUnsubscribed
from hub.models import ProfileStatus
from hub.profiles.consent import Statement, apply_statement
from hub.rules.actions import ActionSpec, Raised, Shown

BOUNCED_REFUSAL = "not resubscribed: the address bounced"


class ConsentParams(BaseModel):
    """Why (kept with the job, for people reading the ledger)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = None


def _raised(target: str, previous: str) -> OwnFact:
    if target == ProfileStatus.UNSUBSCRIBED.value:
        return ProfileUnsubscribed(previous_status=previous)
    return ProfileResubscribed(previous_status=previous)


def _set_status(
    action: str, job_key: str, fact_id: int, profile_id: int, target: str, rule_name: str
) -> str:
    with begin(job_key, fact_id, profile_id, rule_name, lock=True) as act:
        before = act.profile.status
        if target == ProfileStatus.SUBSCRIBED.value and before == ProfileStatus.BOUNCED.value:
            act.skip(action, BOUNCED_REFUSAL)
            return BOUNCED_REFUSAL
        _, decision = apply_statement(  # the ledger keeps it, with the rule's fact as proof
            act.session,
            act.profile,
            Statement(
                stated=target,
                source=f"rule:{rule_name}"[:200],
                proof=f"{action} action of rule {rule_name!r} on fact {fact_id}",
                explicit=True,
                fact_id=fact_id,
            ),
        )
        if decision.after == before:  # already so, or a bounced address stays bounced
            said = f"already {target}" if before == target else f"stays {before}"
            act.done(action, said)
            return said
        act.done(action, f"{before} -> {target}")
        raise_fact(
            act.rt,
            _raised(target, before),
            profile=act.profile.as_dict(),
            source_id=job_key,
            cause_fact=act.fact.as_dict(),
            rule_name=rule_name,
            session=act.session,
        )
    return f"{before} -> {target}"


@action_job
def unsubscribe(
    job_key: str, fact_id: int, profile_id: int, params: dict[str, Any], rule_name: str = ""
) -> str:
    """Stop marketing mail to the profile (transactional mail still goes out)."""
    target = ProfileStatus.UNSUBSCRIBED.value
    return _set_status("unsubscribe", job_key, fact_id, profile_id, target, rule_name)


@action_job
def resubscribe(
    job_key: str, fact_id: int, profile_id: int, params: dict[str, Any], rule_name: str = ""
) -> str:
    """Subscribe an unsubscribed profile again (never a bounced address)."""
    target = ProfileStatus.SUBSCRIBED.value
    return _set_status("resubscribe", job_key, fact_id, profile_id, target, rule_name)


def _show(target: str) -> Any:
    def show(profile: dict[str, Any], _params: ConsentParams, _context: dict[str, Any]) -> Shown:
        before = profile["status"]
        if target == ProfileStatus.SUBSCRIBED.value and before == ProfileStatus.BOUNCED.value:
            return Shown("refused", "the address bounced")
        profile["status"] = target
        if before == target:
            return Shown("done", f"{before} -> {target}")
        fact = _raised(target, before)
        return Shown("done", f"{before} -> {target}", (Raised(fact.TYPE, fact.data()),))

    return show


UNSUBSCRIBE = ActionSpec(
    name="unsubscribe",
    params=ConsentParams,
    job=unsubscribe,
    show=_show(ProfileStatus.UNSUBSCRIBED.value),
)
RESUBSCRIBE = ActionSpec(
    name="resubscribe",
    params=ConsentParams,
    job=resubscribe,
    show=_show(ProfileStatus.SUBSCRIBED.value),
)
