"""Simulation: what would the rules do with this fact, with no side effect?

Used by ``POST /api/v1/rules/simulate``, ``hub rules simulate`` and the scenario runner. It
runs the real engine (durable_rules plus the Python residuals), reads history and limits
from the database when one is given, and writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.facts.schema import FactIn
from hub.models import ExternalId, Profile, ProfileStatus
from hub.profiles.consent import decide, statement_of_ref
from hub.rules.conditions import (
    Context,
    StaticContext,
    describe,
    first_failing,
    parse_duration,
    type_matches,
)
from hub.rules.document import document
from hub.rules.engine import RuleEngine
from hub.rules.history import DbContext, apply_limits
from hub.rules.model import ActionCall, Rule
from hub.times import parse_time


def profile_dict(
    ref: dict[str, Any], given: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """A profile as rules see it, from what the caller gave and the fact's reference."""
    given = dict(given or {})
    fields = dict(given.get("fields") or {})
    fields.update(ref.get("fields") or {})
    return {
        "id": given.get("id"),
        "email": given.get("email", ref.get("email")),
        "status": _status(given.get("status"), ref),
        "fields": fields,
        "tags": list(given.get("tags") or []),
        "external_ids": dict(given.get("external_ids") or ref.get("external_ids") or {}),
        "created_at": given.get("created_at") or now.isoformat(),
        "updated_at": given.get("updated_at") or now.isoformat(),
    }


def _status(given: str | None, ref: dict[str, Any]) -> str:
    """The status the hub would give: the given one (else unconfirmed), then ref's consent."""
    before = given or ProfileStatus.UNCONFIRMED.value
    statement = statement_of_ref(ref, source="simulation", fact_id=None, occurred_at=None)
    return before if statement is None else decide(before, statement).after


def stored_profile(session: Session, ref: dict[str, Any]) -> dict[str, Any] | None:
    """The stored profile a fact reference points at (read only), or None."""
    for source, ext in (ref.get("external_ids") or {}).items():
        found = session.scalar(
            select(Profile)
            .join(ExternalId, ExternalId.profile_id == Profile.id)
            .where(ExternalId.source == source, ExternalId.external_id == ext)
        )
        if found is not None:
            return found.as_dict()
    if ref.get("email"):
        found = session.scalar(select(Profile).where(Profile.email == ref["email"]))
        if found is not None:
            return found.as_dict()
    return None


def fact_in_document(
    fact: FactIn, profile: dict[str, Any], now: datetime, fact_id: Any = None
) -> dict[str, Any]:
    """The document of a fact not stored (yet): its time is ``now`` unless it gives one."""
    occurred = (fact.occurred_at or now).astimezone(UTC).isoformat()
    return document(
        {
            "id": fact_id,
            "type": fact.type,
            "source": fact.source,
            "source_id": fact.source_id,
            "occurred_at": occurred,
            "data": dict(fact.data),
        },
        profile,
    )


def action_plan(action: ActionCall, doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One action as it would be scheduled: its time, delay and ``unless``."""
    out: dict[str, Any] = {"action": action.name, "params": action.params}
    try:
        run_at = action.due_at(doc, now)
    except Exception as exc:  # noqa: BLE001 - reported, as the evaluator would skip it
        out["error"] = f"{type(exc).__name__}: {exc}"
        return out
    out["run_at"] = (run_at or now).isoformat()
    out["delay_seconds"] = int(((run_at or now) - now).total_seconds())
    if action.unless is not None:
        out["unless"] = [describe(c) for c in action.unless.items]
    return out


def explain(rule: Rule, doc: dict[str, Any], ctx: Context | None) -> str:
    """Why ``rule`` does not fire on ``doc``: the trigger, or the first condition that fails."""
    if not type_matches(rule.fact_pattern, doc["type"]):
        return f"fact type {doc['type']!r} does not match {rule.fact_pattern!r}"
    failing = first_failing(rule.condition, doc, ctx)
    if failing is None:
        return "all conditions hold"
    return f"condition failed: {describe(failing, doc, ctx)}"


def simulate(
    engine: RuleEngine,
    fact: FactIn,
    profile: dict[str, Any] | None = None,
    *,
    session: Session | None = None,
    now: datetime | None = None,
    ctx: Context | None = None,
) -> dict[str, Any]:
    """The rules that would fire on ``fact``, their actions and times, and why others don't."""
    now = now or datetime.now(UTC)
    ref = fact.profile.model_dump(exclude_none=True, exclude_defaults=True)
    stored = stored_profile(session, ref) if session is not None and profile is None else None
    prof = profile_dict(ref, stored or profile, now)
    doc = fact_in_document(fact, prof, now)
    if ctx is None:
        ctx = DbContext(session, now) if session is not None else StaticContext(now=now)
    (fired,) = engine.match([doc], ctx)
    held: dict[str, str] = {}
    if prof.get("id") is not None and isinstance(ctx, DbContext):
        fired, held = apply_limits(fired, prof["id"], ctx.firings, now)
    fired_names = {r.name for r in fired}
    return {
        "ruleset_version": engine.ruleset.version,
        "now": now.isoformat(),
        "profile": prof,
        "fired": [
            {
                "rule": r.name,
                "file": r.file,
                "line": r.line,
                "priority": r.priority,
                "actions": [action_plan(a, doc, now) for a in r.actions],
            }
            for r in fired
        ],
        "not_fired": [
            {
                "rule": r.name,
                "file": r.file,
                "line": r.line,
                "reason": held.get(r.name) or explain(r, doc, ctx),
            }
            for r in engine.ruleset.rules
            if r.name not in fired_names
        ],
    }


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30d`` (a duration back from now) or an ISO date."""
    now = now or datetime.now(UTC)
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        when = parse_time(text)
        if when is None:
            raise ValueError(f"{text!r} is neither a duration (30d) nor a date") from None
        return when
