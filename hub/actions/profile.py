"""Profile actions: ``update_profile``, ``create_profile`` (upsert), ``unsubscribe``,
``resubscribe``.

Each applies once (the ledger row commits with the change) and raises the hub's own fact
(``profile.updated`` with ``data.changed``, ``profile.created``, ``profile.unsubscribed``,
``profile.resubscribed``) so that rules can follow changes too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, tuple_

from hub import runtime
from hub.actions.emit import raise_fact
from hub.facts.schema import EMAIL
from hub.models import ActionRun, ExternalId, Fact, Profile, ProfileStatus
from hub.templates import render_value, template_problems


class UpdateProfileParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    set: dict[str, Any] = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list)
    increment: dict[str, int | float | str] = Field(default_factory=dict)
    add_tags: list[str] = Field(default_factory=list)
    remove_tags: list[str] = Field(default_factory=list)


def check_update_profile(params: UpdateProfileParams, _templates: Path) -> list[str]:
    problems = template_problems(params.set, "set") + template_problems(
        params.increment, "increment"
    )
    problems += template_problems(params.add_tags, "add_tags")
    for key, value in params.increment.items():
        if isinstance(value, str) and "{{" not in value:
            problems.append(f"increment.{key}: a number or a template giving one")
    both = set(params.set) & (set(params.unset) | set(params.increment))
    if both:
        problems.append(f"fields both set and unset/incremented: {', '.join(sorted(both))}")
    if not (
        params.set or params.unset or params.increment or params.add_tags or params.remove_tags
    ):
        problems.append("nothing to do: give set, unset, increment, add_tags or remove_tags")
    return problems


def apply_update(
    profile: dict[str, Any], p: UpdateProfileParams, context: dict[str, Any]
) -> list[str]:
    """Change ``profile`` (as :meth:`Profile.as_dict` gives it) in place; return what changed.

    Shared by the job and the scenario runner, so a scenario shows what the hub does.
    """
    fields = profile["fields"]
    before = dict(fields)
    for key, value in p.set.items():
        fields[key] = render_value(value, context)
    for key in p.unset:
        fields.pop(key, None)
    for key, amount in p.increment.items():
        step = render_value(amount, context)
        current = fields.get(key, 0)
        if isinstance(step, bool) or not isinstance(step, int | float):
            raise ValueError(f"increment.{key}: {step!r} is not a number")
        fields[key] = (current if isinstance(current, int | float) else 0) + step
    changed = sorted(
        k for k in set(before) | set(fields) if before.get(k, _NO) != fields.get(k, _NO)
    )
    tags_before = list(profile["tags"])
    tags = [t for t in tags_before if t not in p.remove_tags]
    tags += [t for t in render_value(p.add_tags, context) if t not in tags]
    profile["tags"] = tags
    if tags != tags_before:
        changed.append("tags")
    return changed


_NO = object()


def update_profile(
    job_key: str, fact_id: int, profile_id: int, params: dict[str, Any], rule_name: str = ""
) -> str:
    """Apply ``params`` once: the ledger row and the change commit together."""
    rt = runtime.get()
    p = UpdateProfileParams.model_validate(params)
    with rt.db.session() as session:
        if session.get(ActionRun, job_key) is not None:
            return "already applied"
        profile = session.get(Profile, profile_id, with_for_update=True)
        fact = session.get(Fact, fact_id)
        if profile is None or fact is None:
            return "profile or fact no longer exists"
        current = profile.as_dict()
        fact_doc = fact.as_dict()
        changed = apply_update(current, p, {"profile": profile.as_dict(), "fact": fact_doc})
        profile.fields = current["fields"]
        profile.tags = current["tags"]
        session.add(ActionRun(job_id=job_key, action="update_profile", fact_id=fact_id))
        if not changed:
            return "applied (nothing changed)"
        raise_fact(
            rt,
            fact_type="profile.updated",
            profile=current,
            data={"changed": changed},
            source_id=job_key,
            cause_fact=fact_doc,
            rule_name=rule_name,
            session=session,
        )
    return f"applied (changed {', '.join(changed)})"


class CreateProfileParams(BaseModel):
    """Find a profile by ``email`` and/or ``external_ids`` (templates), create it if new."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = None
    external_ids: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, Any] = Field(default_factory=dict)
    status: ProfileStatus | None = None


def _exists(session: Any, email: str | None, external_ids: dict[str, str]) -> bool:
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
    if not params.email and not params.external_ids:
        return ["give the key to find the profile by: email and/or external_ids"]
    return template_problems(params.model_dump(exclude_none=True), "create_profile")


def create_profile(
    job_key: str, fact_id: int, profile_id: int, params: dict[str, Any], rule_name: str = ""
) -> str:
    """Upsert a profile (such as a friend a contact referred) by email or external id."""
    from hub.profiles.resolve import resolve_profiles

    rt = runtime.get()
    p = CreateProfileParams.model_validate(params)
    with rt.db.session() as session:
        if session.get(ActionRun, job_key) is not None:
            return "already applied"
        fact = session.get(Fact, fact_id)
        profile = session.get(Profile, profile_id)
        if fact is None or profile is None:
            return "profile or fact no longer exists"
        fact_doc = fact.as_dict()
        context = {"profile": profile.as_dict(), "fact": fact_doc}
        ref = render_value(p.model_dump(exclude_none=True, mode="json"), context)
        email = str(ref.get("email") or "").strip().lower() or None
        if email and not EMAIL.match(email):
            session.add(ActionRun(job_id=job_key, action="create_profile", fact_id=fact_id))
            return f"not created: {email!r} is not an email address"
        ref["email"] = email
        ref["external_ids"] = {k: str(v) for k, v in ref.get("external_ids", {}).items() if v}
        if not email and not ref["external_ids"]:
            session.add(ActionRun(job_id=job_key, action="create_profile", fact_id=fact_id))
            return "not created: the key rendered empty"
        created = not _exists(session, email, ref["external_ids"])
        (target,) = resolve_profiles(session, [ref])
        session.flush()
        result = target.as_dict()
        session.add(ActionRun(job_id=job_key, action="create_profile", fact_id=fact_id))
        raise_fact(
            rt,
            fact_type="profile.created" if created else "profile.updated",
            profile=result,
            data={"changed": sorted(ref.get("fields", {}))} if not created else {},
            source_id=job_key,
            cause_fact=fact_doc,
            rule_name=rule_name,
            session=session,
        )
    return f"{'created' if created else 'found'} profile {result['id']}"


class ConsentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = None


def check_consent(_params: ConsentParams, _templates: Path) -> list[str]:
    return []


def _set_status(job_key: str, fact_id: int, profile_id: int, target: str, rule_name: str) -> str:
    rt = runtime.get()
    with rt.db.session() as session:
        if session.get(ActionRun, job_key) is not None:
            return "already applied"
        profile = session.get(Profile, profile_id, with_for_update=True)
        fact = session.get(Fact, fact_id)
        if profile is None or fact is None:
            return "profile or fact no longer exists"
        before = profile.status
        if target == ProfileStatus.SUBSCRIBED.value and before == ProfileStatus.BOUNCED.value:
            session.add(ActionRun(job_id=job_key, action="resubscribe", fact_id=fact_id))
            return "not resubscribed: the address bounced"
        profile.status = target
        session.add(ActionRun(job_id=job_key, action=target, fact_id=fact_id))
        if before == target:
            return f"already {target}"
        raise_fact(
            rt,
            fact_type="profile.unsubscribed"
            if target == "unsubscribed"
            else "profile.resubscribed",
            profile=profile.as_dict(),
            data={"previous": before},
            source_id=job_key,
            cause_fact=fact.as_dict(),
            rule_name=rule_name,
            session=session,
        )
    return f"{before} -> {target}"


def unsubscribe(
    job_key: str, fact_id: int, profile_id: int, params: dict[str, Any], rule_name: str = ""
) -> str:
    """Stop marketing mail to the profile (transactional mail still goes out)."""
    return _set_status(job_key, fact_id, profile_id, ProfileStatus.UNSUBSCRIBED.value, rule_name)


def resubscribe(
    job_key: str, fact_id: int, profile_id: int, params: dict[str, Any], rule_name: str = ""
) -> str:
    """Subscribe an unsubscribed profile again (never a bounced address)."""
    return _set_status(job_key, fact_id, profile_id, ProfileStatus.SUBSCRIBED.value, rule_name)
