"""``update_profile``: set, unset and increment fields, add and remove tags.

Applied once (the ledger row commits with the change); raises ``profile.updated`` with
``data.changed`` so that rules can follow changes too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.actions.hub_facts import raise_fact
from hub.actions.ledger import action_job, begin
from hub.facts.own import ProfileUpdated
from hub.rules.actions import ActionSpec, Raised, Shown
from hub.templates import render_value, template_problems


class UpdateProfileParams(BaseModel):
    """What to change; templates give values from the fact and profile."""

    model_config = ConfigDict(extra="forbid")

    set: dict[str, Any] = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list)
    increment: dict[str, int | float | str] = Field(default_factory=dict)
    add_tags: list[str] = Field(default_factory=list)
    remove_tags: list[str] = Field(default_factory=list)


def check_update_profile(params: UpdateProfileParams, _templates: Path) -> list[str]:
    """Templates compile, increments are numbers, no field is both set and unset."""
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


@action_job
def update_profile(
    job_key: str, fact_id: int, profile_id: int, params: dict[str, Any], rule_name: str = ""
) -> str:
    """Apply ``params`` once: the ledger row and the change commit together."""
    p = UpdateProfileParams.model_validate(params)
    with begin(job_key, fact_id, profile_id, rule_name, lock=True) as act:
        current = act.profile.as_dict()
        changed = apply_update(current, p, act.context)
        act.profile.fields = current["fields"]
        act.profile.tags = current["tags"]
        outcome = (
            f"applied (changed {', '.join(changed)})" if changed else "applied (nothing changed)"
        )
        act.done("update_profile", outcome)
        if not changed:
            return outcome
        raise_fact(
            act.rt,
            ProfileUpdated(changed=changed),
            profile=current,
            source_id=job_key,
            cause_fact=act.context["fact"],
            rule_name=rule_name,
            session=act.session,
        )
    return outcome


def show_update_profile(
    profile: dict[str, Any], params: UpdateProfileParams, context: dict[str, Any]
) -> Shown:
    """In a scenario: the same change on the in-memory profile."""
    changed = apply_update(profile, params, context)
    detail = f"changed {', '.join(changed)}" if changed else "nothing changed"
    raised = (Raised(ProfileUpdated.TYPE, ProfileUpdated(changed=changed).data()),)
    return Shown("done", detail, raised if changed else ())


UPDATE_PROFILE = ActionSpec(
    name="update_profile",
    params=UpdateProfileParams,
    job=update_profile,
    check=check_update_profile,
    show=show_update_profile,
)
