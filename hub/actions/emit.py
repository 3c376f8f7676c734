"""Facts the hub raises itself (``profile.updated``, ``mail.sent``, ...) and the ``emit`` action.

Every such fact goes through :func:`hub.facts.ingest.store_facts` like any other, with a source id
derived from the job that raised it (a job run twice raises one fact). Each carries
``data.caused_by`` (``fact``, ``rule``, ``depth``): a chain of facts raising facts stops at
:data:`MAX_CHAIN_DEPTH`, and the stop is recorded in the action ledger and logged, so a cycle
such as "on profile.updated, increment a field" ends and is visible.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import event
from sqlalchemy.orm import Session

from hub import runtime
from hub.facts.schema import FACT_TYPE, FactIn
from hub.models import ActionRun, Fact, Profile
from hub.runtime import Runtime
from hub.templates import render_value, template_problems

log = logging.getLogger(__name__)

MAX_CHAIN_DEPTH = 8
HUB_SOURCE = "hub"


def chain_depth(fact_data: dict[str, Any] | None) -> int:
    cause = (fact_data or {}).get("caused_by")
    if isinstance(cause, dict) and isinstance(cause.get("depth"), int):
        return cause["depth"]
    return 0


def profile_ref(profile: dict[str, Any]) -> dict[str, Any] | None:
    ref: dict[str, Any] = {}
    if profile.get("email"):
        ref["email"] = profile["email"]
    if profile.get("external_ids"):
        ref["external_ids"] = dict(profile["external_ids"])
    return ref or None


class ChainStopped(str):
    """Why a hub fact was not raised: the chain of facts raising facts is too long."""


def raise_fact(
    rt: Runtime,
    *,
    fact_type: str,
    profile: dict[str, Any],
    data: dict[str, Any],
    source_id: str,
    cause_fact: dict[str, Any] | None,
    rule_name: str | None,
    explicit: bool = False,
    session: Session | None = None,
) -> str:
    """Store one hub fact caused by ``cause_fact``; return what happened (for job results).

    Facts the hub raises by itself are stored only if a rule can use them (see
    :meth:`hub.rules.engine.RuleEngine.wants`); ``explicit`` ones (the ``emit`` action) always are.
    Given the action's open ``session``, the fact commits with the change it describes (a
    crash cannot keep one and lose the other) and a worker is woken once that commit is done.
    """
    fact = hub_fact(
        rt,
        fact_type=fact_type,
        profile=profile,
        data=data,
        source_id=source_id,
        cause_fact=cause_fact,
        rule_name=rule_name,
        explicit=explicit,
    )
    if session is None:
        with rt.db.session() as own:
            return _store_hub_fact(rt, own, fact, source_id, cause_fact)
    return _store_hub_fact(rt, session, fact, source_id, cause_fact)


def _store_hub_fact(
    rt: Runtime,
    session: Session,
    fact: FactIn | str,
    source_id: str,
    cause_fact: dict[str, Any] | None,
) -> str:
    from hub.facts.ingest import notify, store_facts

    if isinstance(fact, ChainStopped):
        ledger = ActionRun(
            job_id=f"{source_id}:stopped"[:200],
            action="chain-stopped",
            fact_id=(cause_fact or {}).get("id"),
        )
        if session.get(ActionRun, ledger.job_id) is None:  # not recorded by an earlier run
            session.add(ledger)
    if isinstance(fact, str):
        return fact
    (stored,) = store_facts(rt.db, [fact], session=session)
    event.listen(session, "after_commit", lambda _s: notify(rt.settings, rt.redis), once=True)
    return f"raised {fact.type} (fact {stored.id}, {stored.status})"


def hub_fact(
    rt: Runtime,
    *,
    fact_type: str,
    profile: dict[str, Any],
    data: dict[str, Any],
    source_id: str,
    cause_fact: dict[str, Any] | None,
    rule_name: str | None,
    explicit: bool = False,
) -> FactIn | str:
    """The hub fact to store, or why none is (a chain too long, no rule listening)."""
    depth = chain_depth((cause_fact or {}).get("data")) + 1
    if depth > MAX_CHAIN_DEPTH:
        message = (
            f"chain stopped: {fact_type} would be fact number {depth} in a chain of facts "
            f"raising facts (limit {MAX_CHAIN_DEPTH}; rule {rule_name!r}): probably a cycle"
        )
        log.warning("%s (cause fact %s)", message, (cause_fact or {}).get("id"))
        return ChainStopped(message)
    ref = profile_ref(profile)
    if ref is None:
        return "no fact raised: the profile has neither email nor external id"
    cause = {"fact": (cause_fact or {}).get("id"), "rule": rule_name, "depth": depth}
    if not explicit and not rt.engine.wants(
        {
            "type": fact_type,
            "fact": {"type": fact_type, "source": HUB_SOURCE, "source_id": source_id},
            "data": {**data, "caused_by": cause},
            "profile": profile,
        }
    ):
        return f"no {fact_type} raised: no rule listens to it"
    return FactIn(
        type=fact_type,
        source=HUB_SOURCE,
        source_id=source_id[:255],
        profile=ref,
        data={**data, "caused_by": cause},
    )


class EmitParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(pattern=FACT_TYPE.pattern)
    data: dict[str, Any] = Field(default_factory=dict)


def check_emit(params: EmitParams, _templates: Path) -> list[str]:
    return template_problems(params.data, "data")


def emit(
    job_key: str, fact_id: int, profile_id: int, params: dict[str, Any], rule_name: str = ""
) -> str:
    """Raise a new fact about the same profile; its data may use templates over fact/profile."""
    rt = runtime.get()
    p = EmitParams.model_validate(params)
    with rt.db.session() as session:
        profile = session.get(Profile, profile_id)
        fact = session.get(Fact, fact_id)
        if profile is None or fact is None:
            return "profile or fact no longer exists"
        context = {"profile": profile.as_dict(), "fact": fact.as_dict()}
        data = render_value(p.data, context)
    return raise_fact(
        rt,
        fact_type=p.type,
        profile=context["profile"],
        data=data,
        source_id=job_key,
        cause_fact=context["fact"],
        rule_name=rule_name,
        explicit=True,
    )
