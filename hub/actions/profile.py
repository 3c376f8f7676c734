"""``update_profile``: set fields and tags on the profile the fact is about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub import runtime
from hub.models import ActionRun, Fact, Profile
from hub.templates import compile_error, render_string


class UpdateProfileParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    set: dict[str, Any] = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list)
    add_tags: list[str] = Field(default_factory=list)
    remove_tags: list[str] = Field(default_factory=list)


def check_update_profile(params: UpdateProfileParams, _templates: Path) -> list[str]:
    problems = []
    for key, value in params.set.items():
        if isinstance(value, str) and (err := compile_error(value)):
            problems.append(f"set.{key}: template does not compile: {err}")
    if not (params.set or params.unset or params.add_tags or params.remove_tags):
        problems.append("nothing to do: give set, unset, add_tags or remove_tags")
    return problems


def _value(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str) and "{" in value:
        return render_string(value, context)
    return value


def update_profile(job_key: str, fact_id: int, profile_id: int, params: dict[str, Any]) -> str:
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
        context = {"profile": profile.as_dict(), "fact": fact.as_dict()}
        fields = dict(profile.fields or {})
        for key, value in p.set.items():
            fields[key] = _value(value, context)
        for key in p.unset:
            fields.pop(key, None)
        tags = [t for t in (profile.tags or []) if t not in p.remove_tags]
        tags += [t for t in p.add_tags if t not in tags]
        profile.fields = fields
        profile.tags = tags
        session.add(ActionRun(job_id=job_key, action="update_profile", fact_id=fact_id))
    return "applied"
