"""Matching a locked batch: profiles resolved, rules matched, firings recorded, jobs planned.

Runs inside the transaction that holds the batch (see :mod:`hub.worker.drain`): the profiles
the facts name are found (locked) or created and their fields merged, the rules matched
(:mod:`hub.rules.engine`), limits applied, the firings and their planned actions stored (the
action outbox) and the facts marked evaluated, all in the one commit. The action jobs are
planned here and enqueued by the caller once that commit is done (:mod:`hub.worker.dispatch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import insert, select

from hub.actions.hub_facts import NotRaised, hub_fact
from hub.db import bulk_insert, bulk_update, one_of
from hub.facts.ingest import store_facts
from hub.facts.own import ProfileCreated, ProfileUpdated
from hub.models import ActionRun, ActionStatus, Fact, FactStatus, RuleFiring
from hub.profiles.consent import apply_in_batch, statement_of_ref
from hub.profiles.records import apply_record_deletions
from hub.profiles.resolve import ProfileRow, resolve_profile_rows
from hub.rules.document import fact_document
from hub.rules.history import DbContext, apply_limits
from hub.runtime import Runtime
from hub.times import utcnow
from hub.worker.dispatch import Planned, job_key, outbox_rows, plan_jobs
from hub.worker.pending import ClaimedFact


class Evaluated(NamedTuple):
    """What a batch's evaluation leaves for after its commit."""

    jobs: list[tuple[str, Any, Any]]  # the action jobs to enqueue (see dispatch.enqueue)
    raised: bool  # it stored facts of the hub's own: wake a worker for them


def evaluate_batch(rt: Runtime, session: Any, facts: Sequence[ClaimedFact]) -> Evaluated:
    """Evaluate facts locked in ``session``: match, record firings and planned actions.

    The caller commits, then enqueues :attr:`Evaluated.jobs`: a job enqueued before the
    commit could run first and find neither the profile nor the ledger row it acts on.
    """
    if not facts:
        return Evaluated([], False)
    engine = rt.engine
    ruleset = engine.ruleset
    refs = [f.profile_ref for f in facts]
    known: dict[int, dict[str, Any]] = {}
    resolved = resolve_profile_rows(session, refs, fields_before=known)
    now = utcnow()
    facts, profiles = _about_someone(session, facts, resolved, now)
    raised = _profile_facts(facts, profiles, known)
    raised += _consent_facts(session, facts, profiles)
    docs = [fact_document(f, p) for f, p in zip(facts, profiles, strict=True)]
    ctx = DbContext(
        session,
        now,
        batch_profiles={p.id for p in profiles},
        history_types=engine.history_patterns,
        limited_rules=engine.limited_rules,
        batch_facts=[(p.id, f) for f, p in zip(facts, profiles, strict=True)],
    )
    matches = engine.match(docs, ctx)
    failed: list[dict[str, Any]] = []
    already = _existing_firings(session, [f.id for f in facts if f.evaluated_at is not None])
    actions: list[Planned] = []
    firings = []
    for fact, profile, doc, rules in zip(facts, profiles, docs, matches, strict=True):
        fresh = [r for r in rules if (fact.id, r.name) not in already]
        allowed, _held = apply_limits(fresh, profile.id, ctx.firings, now)
        for rule in allowed:
            records = []
            for index, action in enumerate(rule.actions):
                key = job_key(fact.id, rule.name, index)
                record = {
                    "job_id": key,
                    "action": action.name,
                    "queue": rt.actions[action.name].queue,
                }
                records.append(record)
                try:
                    run_at = action.due_at(doc, now)
                except Exception as exc:  # a date from bad data: skip this action only
                    record["skipped"] = f"{type(exc).__name__}: {exc}"
                    failed.append(
                        {
                            "job_id": key,
                            "action": action.name,
                            "fact_id": fact.id,
                            "profile_id": profile.id,
                            "rule_name": rule.name,
                            "status": ActionStatus.FAILED.value,
                            "outcome": f"no due time: {record['skipped']}",
                            "created_at": now,
                            "finished_at": now,
                        }
                    )
                    continue
                if run_at is not None:
                    record["run_at"] = run_at.isoformat()
                actions.append(Planned(action, key, fact.id, profile.id, rule.name, run_at, record))
            ctx.record(profile.id, rule.name, now)
            firings.append(
                {
                    "fact_id": fact.id,
                    "profile_id": profile.id,
                    "rule_name": rule.name,
                    "rule_file": rule.file,
                    "ruleset_version": ruleset.version,
                    "jobs": records,
                    "fired_at": now,
                }
            )
    jobs = plan_jobs(rt.actions, actions)  # names each record's batch job before they are stored
    bulk_insert(session, RuleFiring.__table__, firings)
    bulk_insert(session, ActionRun.__table__, outbox_rows(rt.actions, actions, now))
    if failed:
        session.execute(insert(ActionRun), failed)
    evaluated = FactStatus.EVALUATED.value
    bulk_update(
        session,
        Fact,
        [
            {"id": f.id, "profile_id": p.id, "status": evaluated, "evaluated_at": now}
            for f, p in zip(facts, profiles, strict=True)
        ],
    )
    apply_record_deletions(session, facts, profiles)
    return Evaluated(jobs, _store_profile_facts(rt, session, raised))


def _about_someone(
    session: Any,
    facts: Sequence[ClaimedFact],
    resolved: Sequence[ProfileRow | None],
    now: Any,
) -> tuple[list[ClaimedFact], list[ProfileRow]]:
    """The facts that name a profile, and their profiles.

    The others (``create: false``, nobody known) are marked evaluated without one: no rule
    acts on nobody.
    """
    kept: list[ClaimedFact] = []
    rows: list[ProfileRow] = []
    nobody = []
    for fact, row in zip(facts, resolved, strict=True):
        if row is None:
            nobody.append(
                {"id": fact.id, "status": FactStatus.EVALUATED.value, "evaluated_at": now}
            )
        else:
            kept.append(fact)
            rows.append(row)
    bulk_update(session, Fact, nobody)
    return kept, rows


def _consent_facts(
    session: Any, facts: Sequence[ClaimedFact], profiles: Sequence[ProfileRow]
) -> list[dict[str, Any]]:
    """Apply the consent the facts state (hub.profiles.consent); the facts to raise for it."""
    statements = [
        statement_of_ref(f.profile_ref, source=f.source, fact_id=f.id, occurred_at=f.occurred_at)
        for f in facts
    ]
    if not any(statements):
        return []
    applied = apply_in_batch(session, statements, profiles)
    return [
        {
            "fact": own,
            "profile": row.as_dict(),
            "source_id": f"fact-{facts[index].id}:{own.TYPE}",
            "cause": facts[index].as_dict(),
        }
        for index, row, own in applied.raised
    ]


def _profile_facts(
    facts: Sequence[ClaimedFact], profiles: Sequence[ProfileRow], known: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The hub's own facts about profiles this batch created or whose fields a source changed.

    ``known`` holds the fields, before this batch, of the profiles that existed already.
    """
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for fact, profile in zip(facts, profiles, strict=True):
        if profile.id in seen:
            continue
        seen.add(profile.id)
        cause = fact.as_dict()
        if profile.id not in known:
            out.append(
                {
                    "fact": ProfileCreated(),
                    "profile": profile.as_dict(),
                    "source_id": f"profile.created:{profile.id}",
                    "cause": cause,
                }
            )
            continue
        old, new = known[profile.id], dict(profile.fields or {})
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed:
            out.append(
                {
                    "fact": ProfileUpdated(changed=changed),
                    "profile": profile.as_dict(),
                    "source_id": f"fact-{fact.id}:profile.updated",
                    "cause": cause,
                }
            )
    return out


def _store_profile_facts(rt: Runtime, session: Any, raised: list[dict[str, Any]]) -> bool:
    """Store the hub's own facts in the evaluation's transaction; True if any was stored.

    They commit with it or not at all, so a worker that dies after the commit loses none.
    """
    facts = []
    for item in raised:
        try:
            fact = hub_fact(
                rt,
                fact_type=item["fact"].TYPE,
                profile=item["profile"],
                data=item["fact"].data(),
                source_id=item["source_id"],
                cause_fact=item["cause"],
                rule_name=None,
            )
        except NotRaised:
            continue
        facts.append(fact)
    if facts:
        store_facts(rt.db, facts, session=session)
    return bool(facts)


def _existing_firings(session: Any, fact_ids: Sequence[int]) -> set[tuple[int, str]]:
    """The rules that fired already for facts evaluated before (sent back to ``pending``).

    Only those can have firings: an evaluation stores its firings and sets ``evaluated_at`` in
    one transaction. Asking only for them spares each batch a look-up that finds nothing.
    """
    if not fact_ids:
        return set()
    rows = session.execute(
        select(RuleFiring.fact_id, RuleFiring.rule_name).where(
            one_of(session, RuleFiring.fact_id, fact_ids)
        )
    )
    return {(fid, name) for fid, name in rows}
