"""A profile's timeline: everything that happened to it, in order.

Facts, consent statements (the ledger), rule firings, scheduled and done actions and mails,
merged by time: the answer to "why
did this contact get this mail?" (``GET /api/v1/profiles/<id>/timeline``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import ActionRun, ActionStatus, ConsentEvent, Fact, Message, RuleFiring
from hub.times import parse_time


def profile_timeline(session: Session, profile_id: int) -> list[dict[str, Any]]:
    """The events of one profile, oldest first (facts before the firings they caused)."""
    events: list[dict[str, Any]] = []
    facts = list(session.scalars(select(Fact).where(Fact.profile_id == profile_id)))
    for f in facts:
        events.append(
            {
                "at": f.occurred_at.isoformat(),
                "kind": "fact",
                "fact_id": f.id,
                "type": f.type,
                "source": f.source,
                "status": f.status,
                "data": f.data,
            }
        )
    firings = list(session.scalars(select(RuleFiring).where(RuleFiring.profile_id == profile_id)))
    job_ids = [j["job_id"] for r in firings for j in r.jobs]
    done = (
        {
            a.job_id: a
            for a in session.scalars(select(ActionRun).where(ActionRun.job_id.in_(job_ids)))
        }
        if job_ids
        else {}
    )
    mails = {
        m.job_id: m
        for m in session.scalars(select(Message).where(Message.profile_id == profile_id))
    }
    for r in firings:
        events.append(
            {
                "at": r.fired_at.isoformat(),
                "kind": "firing",
                "rule": r.rule_name,
                "rule_file": r.rule_file,
                "ruleset_version": r.ruleset_version,
                "fact_id": r.fact_id,
                "jobs": [j["job_id"] for j in r.jobs],
            }
        )
        for j in r.jobs:
            run = done.get(j["job_id"])
            if run is not None and run.status == ActionStatus.PLANNED.value:
                run = None  # planned: not settled yet
            mail = mails.get(j["job_id"])
            state = "skipped" if "skipped" in j else "pending"
            if run is not None:
                state = run.status
            if mail is not None:
                state = mail.status
            if "run_at" in j:
                events.append(
                    {
                        "at": j["run_at"],
                        "kind": "scheduled",
                        "rule": r.rule_name,
                        "action": j["action"],
                        "job_id": j["job_id"],
                        "state": state,
                    }
                )
            elif run is not None and mail is None:
                events.append(
                    {
                        "at": (run.finished_at or r.fired_at).isoformat(),
                        "kind": "action",
                        "rule": r.rule_name,
                        "action": j["action"],
                        "job_id": j["job_id"],
                        "state": state,
                    }
                )
    for m in mails.values():
        events.append(
            {
                "at": (m.sent_at or m.created_at).isoformat(),
                "kind": "mail",
                "rule": m.rule_name,
                "template": m.template,
                "subject": m.subject,
                "status": m.status,
                "error": m.error,
                "job_id": m.job_id,
                "fact_id": m.fact_id,
            }
        )
    consent = session.scalars(select(ConsentEvent).where(ConsentEvent.profile_id == profile_id))
    for c in consent:
        events.append({"at": c.recorded_at.isoformat(), "kind": "consent", **c.as_dict()})
    order = {"fact": 0, "consent": 1, "firing": 2, "action": 3, "mail": 4, "scheduled": 5}
    events.sort(
        key=lambda e: (parse_time(e["at"]) or datetime.min.replace(tzinfo=UTC), order[e["kind"]])
    )
    return events
