"""Facts the hub raises itself (``profile.updated``, ``mail.sent``, ...), caused by an action.

Every such fact goes through :func:`hub.facts.ingest.store_facts` like any other, with a
source id derived from the job that raised it (a job run twice raises one fact). Each carries
``data.caused_by`` (``fact``, ``rule``, ``depth``): a chain of facts raising facts stops at
:data:`MAX_CHAIN_DEPTH`, and the stop is recorded in the action ledger and logged, so a cycle
such as "on profile.updated, increment a field" ends and is visible.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from hub.facts.ingest import notify, store_facts
from hub.facts.own import HUB_SOURCE, OwnFact
from hub.facts.schema import FactIn, ProfileRef
from hub.models import ActionRun
from hub.rules.document import document
from hub.runtime import Runtime

log = logging.getLogger(__name__)

MAX_CHAIN_DEPTH = 8


class NotRaised(Exception):
    """Why a hub fact is not stored (no rule listens to it, the profile has no key)."""


class ChainStopped(NotRaised):
    """The chain of facts raising facts is too long: probably a cycle of rules."""


def chain_depth(fact_data: dict[str, Any] | None) -> int:
    """How many facts raised facts before this one (0: it came from outside)."""
    cause = (fact_data or {}).get("caused_by")
    if isinstance(cause, dict) and isinstance(cause.get("depth"), int):
        return cause["depth"]
    return 0


def profile_ref(profile: dict[str, Any]) -> dict[str, Any] | None:
    """The reference a hub fact names its profile by: email and external ids."""
    ref: dict[str, Any] = {}
    if profile.get("email"):
        ref["email"] = profile["email"]
    if profile.get("external_ids"):
        ref["external_ids"] = dict(profile["external_ids"])
    return ref or None


def raise_fact(
    rt: Runtime,
    fact: OwnFact | tuple[str, dict[str, Any]],
    *,
    profile: dict[str, Any],
    source_id: str,
    cause_fact: dict[str, Any] | None,
    rule_name: str | None,
    session: Session,
) -> str:
    """Store one hub fact caused by ``cause_fact`` in the action's transaction; say what happened.

    ``fact`` is one of the hub's own facts (:mod:`hub.facts.own`), stored only if a rule can use
    it (see :meth:`hub.rules.engine.RuleEngine.wants`), or ``(type, data)`` of an ``emit``
    action, always stored. It commits with the change it describes (a crash cannot keep one
    and lose the other) and a worker is woken once that commit is done.
    """
    if isinstance(fact, OwnFact):
        fact_type, data, explicit = fact.TYPE, fact.data(), False
    else:
        (fact_type, data), explicit = fact, True
    try:
        built = hub_fact(
            rt,
            fact_type=fact_type,
            profile=profile,
            data=data,
            source_id=source_id,
            cause_fact=cause_fact,
            rule_name=rule_name,
            explicit=explicit,
        )
    except ChainStopped as stop:
        ledger = ActionRun(
            job_id=f"{source_id}:stopped"[:200],
            action="chain-stopped",
            fact_id=(cause_fact or {}).get("id"),
        )
        if session.get(ActionRun, ledger.job_id) is None:  # not recorded by an earlier run
            session.add(ledger)
        return str(stop)
    except NotRaised as reason:
        return str(reason)
    (stored,) = store_facts(rt.db, [built], session=session)
    event.listen(session, "after_commit", lambda _s: notify(rt.settings, rt.redis), once=True)
    return f"raised {built.type} (fact {stored.id}, {stored.status})"


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
) -> FactIn:
    """The hub fact to store.

    Raises:
        ChainStopped: the fact would be the :data:`MAX_CHAIN_DEPTH` + 1st of a chain.
        NotRaised: no rule listens to it (unless ``explicit``), or the profile has no key.
    """
    depth = chain_depth((cause_fact or {}).get("data")) + 1
    if depth > MAX_CHAIN_DEPTH:
        message = (
            f"chain stopped: {fact_type} would be fact number {depth} in a chain of facts "
            f"raising facts (limit {MAX_CHAIN_DEPTH}; rule {rule_name!r}): probably a cycle"
        )
        log.warning("%s (cause fact %s)", message, (cause_fact or {}).get("id"))
        raise ChainStopped(message)
    ref = profile_ref(profile)
    if ref is None:
        raise NotRaised("no fact raised: the profile has neither email nor external id")
    data = {
        **data,
        "caused_by": {"fact": (cause_fact or {}).get("id"), "rule": rule_name, "depth": depth},
    }
    probe = {"type": fact_type, "source": HUB_SOURCE, "source_id": source_id, "data": data}
    if not explicit and not rt.engine.wants(document(probe, profile)):
        raise NotRaised(f"no {fact_type} raised: no rule listens to it")
    return FactIn(
        type=fact_type,
        source=HUB_SOURCE,
        source_id=source_id[:255],
        profile=ProfileRef.model_validate(ref),
        data=data,
    )
