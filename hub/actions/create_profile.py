"""``create_profile``: find a profile by email and/or external ids (templates), create it if new.

For contacts a fact names besides its own (a friend a contact referred). Raises
``profile.created`` for a new profile, ``profile.updated`` for one found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from hub.actions.hub_facts import raise_fact
from hub.actions.ledger import action_job, begin
from hub.facts.own import ProfileCreated, ProfileUpdated
from hub.facts.schema import EMAIL
from hub.models import ExternalId, Profile, ProfileStatus
from hub.profiles.consent import Statement, apply_statement
from hub.profiles.resolve import resolve_profiles
from hub.rules.actions import ActionSpec
from hub.templates import render_value, template_problems


class CreateProfileParams(BaseModel):
    """The key to find the profile by, and what a new one starts with."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = None
    external_ids: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, Any] = Field(default_factory=dict)
    status: ProfileStatus | None = None


def _exists(session: Session, email: str | None, external_ids: dict[str, str]) -> bool:
    if email and session.scalar(select(Profile.id).where(Profile.email == email)) is not None:
        return True
    pairs = list(external_ids.items())
    return bool(pairs) and (
        session.scalar(
            select(ExternalId.id).where(
                tuple_(ExternalId.source, ExternalId.external_id).in_(pairs)
            )
        )
        is not None
    )


def check_create_profile(params: CreateProfileParams, _templates: Path) -> list[str]:
    """A key is given and its templates compile."""
    if not params.email and not params.external_ids:
        return ["give the key to find the profile by: email and/or external_ids"]
    return template_problems(params.model_dump(exclude_none=True), "create_profile")


@action_job
def create_profile(
    job_key: str, fact_id: int, profile_id: int, params: dict[str, Any], rule_name: str = ""
) -> str:
    """Upsert a profile (such as a friend a contact referred) by email or external id."""
    p = CreateProfileParams.model_validate(params)
    with begin(job_key, fact_id, profile_id, rule_name) as act:
        ref = render_value(p.model_dump(exclude_none=True, mode="json"), act.context)
        email = str(ref.get("email") or "").strip().lower() or None
        if email and not EMAIL.match(email):
            outcome = f"not created: {email!r} is not an email address"
            act.skip("create_profile", outcome)
            return outcome
        ref["email"] = email
        ref["external_ids"] = {k: str(v) for k, v in ref.get("external_ids", {}).items() if v}
        if not email and not ref["external_ids"]:
            outcome = "not created: the key rendered empty"
            act.skip("create_profile", outcome)
            return outcome
        created = not _exists(act.session, email, ref["external_ids"])
        (target,) = resolve_profiles(act.session, [ref])
        if created and p.status is not None:  # the rule's statement, kept in the ledger
            apply_statement(
                act.session,
                target,
                Statement(
                    stated=p.status.value,
                    source=f"rule:{rule_name}"[:200],
                    proof=f"create_profile of rule {rule_name!r} on fact {fact_id}",
                    fact_id=fact_id,
                ),
            )
        act.session.flush()
        result = target.as_dict()
        outcome = f"{'created' if created else 'found'} profile {result['id']}"
        act.done("create_profile", outcome)
        raise_fact(
            act.rt,
            ProfileCreated() if created else ProfileUpdated(changed=sorted(ref.get("fields", {}))),
            profile=result,
            source_id=job_key,
            cause_fact=act.context["fact"],
            rule_name=rule_name,
            session=act.session,
        )
    return outcome


CREATE_PROFILE = ActionSpec(
    name="create_profile",
    params=CreateProfileParams,
    job=create_profile,
    check=check_create_profile,
)
