"""Marketing consent: what a statement does to a profile's status, and the ledger that keeps it.

One rule for every door (facts from any source, the REST and SOAP profile APIs, rule actions,
the operator's re-classification), so that no door can invent consent:

- a profile nobody stated consent for is ``unconfirmed``: no marketing mail;
- ``subscribed`` from a plain sync (a vendor's flag read as it is now) gives consent to an
  ``unconfirmed`` profile only; an ``unsubscribed`` or ``bounced`` one needs an *explicit*
  opt-in (the contact opted in just now: a confirmed form, a vendor's opt-in flag that changed
  to yes, an API call that says so);
- ``unsubscribed`` always applies (a bounced address stays bounced: it gets no mail anyway);
- every statement becomes a :class:`~hub.models.ConsentEvent`, applied, unchanged or ignored
  with the reason, with its proof (source, time, the flag or text, IP and user agent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hub.db import bulk_insert, bulk_update
from hub.facts.own import OwnFact, ProfileSubscribed, ProfileUnsubscribed
from hub.models import ConsentEvent, ConsentOutcome, Profile, ProfileStatus
from hub.times import parse_time, utcnow

SUBSCRIBED = ProfileStatus.SUBSCRIBED.value
UNSUBSCRIBED = ProfileStatus.UNSUBSCRIBED.value
BOUNCED = ProfileStatus.BOUNCED.value
UNCONFIRMED = ProfileStatus.UNCONFIRMED.value


@dataclass(frozen=True)
class Statement:
    """A statement of consent as the ledger keeps it, whatever door it came through."""

    stated: str  # subscribed, unsubscribed, bounced, unconfirmed (an operator's re-classification)
    source: str
    proof: str
    explicit: bool = False
    stated_at: datetime | None = None
    fact_id: int | None = None
    ip: str | None = None
    user_agent: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What a statement does to a status: the status after, the outcome, why (if ignored)."""

    after: str
    outcome: ConsentOutcome
    reason: str | None = None


def decide(before: str, statement: Statement) -> Decision:
    """What ``statement`` does to a profile whose status is ``before``."""
    stated = statement.stated
    if stated == before:
        return Decision(before, ConsentOutcome.UNCHANGED)
    if stated == UNSUBSCRIBED and before == BOUNCED:
        return Decision(before, ConsentOutcome.IGNORED, "the address bounced: it stays bounced")
    if stated == SUBSCRIBED and before != UNCONFIRMED and not statement.explicit:
        return Decision(
            before,
            ConsentOutcome.IGNORED,
            f"the profile is {before}: only an explicit opt-in subscribes it again, "
            "not a plain sync",
        )
    return Decision(stated, ConsentOutcome.APPLIED)


def statement_of_ref(
    ref: dict[str, Any], *, source: str, fact_id: int | None, occurred_at: datetime | None
) -> Statement | None:
    """The consent a stored fact's profile reference states (``consent``, else ``status``)."""
    consent = ref.get("consent")
    if isinstance(consent, dict) and consent.get("status"):
        at = consent.get("at")
        return Statement(
            stated=str(consent["status"]),
            source=source,
            proof=str(consent.get("proof") or ""),
            explicit=bool(consent.get("explicit")),
            stated_at=(parse_time(at) if isinstance(at, str) else None) or occurred_at,
            fact_id=fact_id,
            ip=consent.get("ip"),
            user_agent=consent.get("user_agent"),
            evidence=dict(consent.get("evidence") or {}),
        )
    status = ref.get("status")
    if status in (SUBSCRIBED, UNSUBSCRIBED, BOUNCED):
        return Statement(
            stated=status,
            source=source,
            proof=f"profile.status={status} in a fact from {source}",
            stated_at=occurred_at,
            fact_id=fact_id,
        )
    return None


def event_row(
    profile_id: int, before: str, statement: Statement, decision: Decision
) -> dict[str, Any]:
    """The ledger row of one statement, as columns."""
    now = utcnow()
    return {
        "profile_id": profile_id,
        "fact_id": statement.fact_id,
        "source": statement.source[:200],
        "stated": statement.stated,
        "explicit": statement.explicit,
        "status_before": before,
        "status_after": decision.after,
        "outcome": decision.outcome.value,
        "reason": decision.reason,
        "proof": statement.proof,
        "ip": statement.ip,
        "user_agent": statement.user_agent,
        "evidence": dict(statement.evidence),
        "stated_at": statement.stated_at or now,
        "recorded_at": now,
    }


def raised_fact(before: str, statement: Statement, decision: Decision) -> OwnFact | None:
    """The hub's own fact for a status change a statement made, if rules are to hear of it."""
    if decision.outcome is not ConsentOutcome.APPLIED:
        return None
    if decision.after == UNSUBSCRIBED:
        return ProfileUnsubscribed(previous_status=before)
    if decision.after == SUBSCRIBED:
        return ProfileSubscribed(
            previous_status=before,
            source=statement.source,
            explicit=statement.explicit,
            proof=statement.proof,
        )
    return None


def apply_statement(session: Session, profile: Any, statement: Statement) -> tuple[str, Decision]:
    """Apply one statement to a locked ``profile`` (ORM object or row); record it in the ledger.

    Returns the status before and the decision; the caller raises the fact, if any, with its
    own write (:func:`raised_fact`).
    """
    before = profile.status
    decision = decide(before, statement)
    if decision.outcome is ConsentOutcome.APPLIED:
        profile.status = decision.after
    session.execute(insert(ConsentEvent), [event_row(profile.id, before, statement, decision)])
    return before, decision


@dataclass
class BatchConsent:
    """The consent a batch's facts stated: ledger rows, status changes and the facts to raise."""

    events: list[dict[str, Any]] = field(default_factory=list)
    changed: dict[int, Any] = field(default_factory=dict)
    raised: list[tuple[int, Any, OwnFact]] = field(default_factory=list)  # (fact index, row, fact)


def apply_in_batch(
    session: Session, statements: Sequence[Statement | None], profiles: Sequence[Any]
) -> BatchConsent:
    """Apply each fact's statement to its (locked) profile row, in the facts' order.

    Several facts of one contact in a batch apply one after the other, as they would one by
    one. The ledger rows and the changed statuses are written in two statements.
    """
    out = BatchConsent()
    for index, (statement, row) in enumerate(zip(statements, profiles, strict=True)):
        if statement is None or row is None:
            continue
        before = row.status
        decision = decide(before, statement)
        out.events.append(event_row(row.id, before, statement, decision))
        if decision.outcome is ConsentOutcome.APPLIED:
            row.status = decision.after
            out.changed[row.id] = row
            own = raised_fact(before, statement, decision)
            if own is not None:
                out.raised.append((index, row, own))
    if out.changed:
        now = utcnow()
        bulk_update(
            session,
            Profile,
            [{"id": r.id, "status": r.status, "updated_at": now} for r in out.changed.values()],
        )
        for row in out.changed.values():
            row.updated_at = now
    bulk_insert(session, ConsentEvent.__table__, out.events)
    return out


def ledger(session: Session, profile_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """The profile's consent ledger, newest first."""
    rows = session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.profile_id == profile_id)
        .order_by(ConsentEvent.id.desc())
        .limit(limit)
    )
    return [r.as_dict() for r in rows]


RECLASSIFY_PROOF = (
    "re-classified by an operator: created subscribed by an earlier release's default, "
    "with no recorded consent"
)


def reclassify_defaults(session: Session, *, created_before: datetime | None, apply: bool) -> int:
    """Profiles ``subscribed`` with no consent on record, set ``unconfirmed`` if ``apply``.

    These are the profiles an earlier release made ``subscribed`` by default. Each change is
    recorded in the ledger (source ``operator``), so a later look at a profile tells why it
    lost its status. Answers how many profiles match (and, with ``apply``, were changed).
    """
    recorded = select(ConsentEvent.profile_id).where(ConsentEvent.profile_id == Profile.id)
    query = select(Profile).where(Profile.status == SUBSCRIBED, ~recorded.exists())
    if created_before is not None:
        query = query.where(Profile.created_at < created_before)
    profiles = list(session.scalars(query.with_for_update()))
    if apply:
        statement = Statement(stated=UNCONFIRMED, source="operator", proof=RECLASSIFY_PROOF)
        for profile in profiles:
            apply_statement(session, profile, statement)
    return len(profiles)
