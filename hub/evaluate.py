"""Evaluating stored facts against the rules, in batches, as RQ jobs on the ``facts`` queue.

The facts table is the queue of record: ingest commits facts as ``pending``. A drain job takes
a batch in one transaction: it locks pending facts (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so workers take disjoint batches; SQLite serialises writers), matches them, enqueues the action
jobs in one Redis pipeline, records the firings and marks the facts ``evaluated``, and commits.
A worker that dies mid-batch leaves no trace: its transaction is rolled back, its locks are
released at once and the facts are still ``pending`` for the next drain.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from rq import Queue, Retry
from sqlalchemy import select, text, update

from hub import runtime
from hub.actions import ACTIONS
from hub.actions.batch import (
    ACTION_FAILURE_TTL,
    ACTION_RESULT_TTL,
    Item,
    action_retry,
    unpack,
)
from hub.db import bulk_insert, bulk_update, dialect_name, one_of
from hub.facts.ingest import notify
from hub.models import Fact, FactStatus, Profile, RuleFiring, fact_dict, utcnow
from hub.profiles.resolve import ProfileRow, resolve_profile_rows
from hub.queue import queue, request_evaluation, wake_key
from hub.rules.conditions import parse_time, to_plain
from hub.rules.engine import refresh
from hub.rules.history import DbContext, apply_limits
from hub.rules.model import ActionCall
from hub.runtime import Runtime

log = logging.getLogger(__name__)

MAX_JOB_SECONDS = 20  # a drain job hands over after this; keeps jobs far below RQ's timeouts
IDLE_IN_BATCH_SECONDS = 60  # PostgreSQL ends a batch transaction left idle this long
ACTIONS_PER_JOB = 100  # actions of one queue per batch job: small enough to spread over workers
# A batch job fails as a whole only when it overruns its timeout; its done actions are no-ops.
BATCH_RETRY = Retry(max=3, interval=[10, 60, 300])


def drain_pending() -> int:
    """RQ job: evaluate pending facts batch by batch; return how many were evaluated."""
    rt = runtime.get()
    rt.redis.delete(wake_key(rt.settings))
    refresh(rt)  # a changed rule directory is picked up here, if it is valid
    started = time.monotonic()
    total = 0
    while True:
        taken = evaluate_next_batch(rt)
        if not taken:
            return total
        total += taken
        if taken == rt.settings.fact_batch_size:
            request_evaluation(rt.settings, rt.redis)  # more waiting: let another worker join
        if time.monotonic() - started > MAX_JOB_SECONDS:
            request_evaluation(rt.settings, rt.redis)
            return total


def evaluate_next_batch(rt: Runtime) -> int:
    """Evaluate the next batch of pending facts; return its size (0: nothing pending).

    If the batch fails, its facts are evaluated one by one, so that one bad fact fails alone.
    """
    ids: list[int] = []
    try:
        with rt.db.session() as session:
            facts = lock_pending(session, limit=rt.settings.fact_batch_size)
            ids = [f.id for f in facts]
            raised = evaluate_locked(rt, session, facts)
    except Exception:
        if not ids:
            raise  # nothing was taken: the database itself failed
        log.exception("batch of %d facts failed; evaluating them one by one", len(ids))
        for fact_id in ids:
            evaluate_one(rt, fact_id)
        return len(ids)
    if raised:
        notify(rt.settings, rt.redis)
    return len(ids)


def evaluate_one(rt: Runtime, fact_id: int) -> None:
    """Evaluate one pending fact alone; if that fails too, mark it ``failed`` with the error."""
    try:
        with rt.db.session() as session:
            raised = evaluate_locked(rt, session, lock_pending(session, ids=[fact_id]))
    except Exception as exc:
        log.exception("fact %d could not be evaluated", fact_id)
        with rt.db.session() as session:
            session.execute(
                update(Fact)
                .where(Fact.id == fact_id, Fact.status == FactStatus.PENDING.value)
                .values(status=FactStatus.FAILED.value, error=f"{type(exc).__name__}: {exc}")
            )
        return
    if raised:
        notify(rt.settings, rt.redis)


def lock_pending(
    session: Any, *, limit: int | None = None, ids: Sequence[int] | None = None
) -> list[ClaimedFact]:
    """Pending facts, oldest first, locked until the session's transaction ends.

    PostgreSQL skips rows another worker holds and drops the locks of a worker whose
    connection dies; a transaction left idle (a worker stuck) is ended after
    :data:`IDLE_IN_BATCH_SECONDS`. SQLite takes the write lock when the transaction begins.
    """
    if dialect_name(session) == "postgresql":
        session.execute(
            text(f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_IN_BATCH_SECONDS}s'")
        )
    query = select(*ClaimedFact.columns()).where(Fact.status == FactStatus.PENDING.value)
    if ids is not None:
        query = query.where(Fact.id.in_(ids))
    query = query.order_by(Fact.id).limit(limit).with_for_update(skip_locked=True)
    return [ClaimedFact(*row) for row in session.execute(query)]


class ClaimedFact(NamedTuple):
    """A fact taken for evaluation, read as a plain row (an ORM object costs more to load)."""

    id: int
    type: str
    source: str
    source_id: str | None
    occurred_at: datetime
    profile_ref: dict[str, Any]
    data: dict[str, Any]
    evaluated_at: datetime | None  # set: evaluated before, and sent back to ``pending``

    @staticmethod
    def columns() -> tuple[Any, ...]:
        return (
            Fact.id,
            Fact.type,
            Fact.source,
            Fact.source_id,
            Fact.occurred_at,
            Fact.profile_ref,
            Fact.data,
            Fact.evaluated_at,
        )

    def as_dict(self) -> dict[str, Any]:
        return fact_dict(self)


def job_key(fact_id: int, rule_name: str, index: int) -> str:
    """The deterministic RQ job id of one action: same fact, rule and index, same job."""
    return f"act-{fact_id}-{_rule_hash(rule_name)}-{index}"


@functools.lru_cache(maxsize=4096)
def _rule_hash(rule_name: str) -> str:
    return hashlib.sha1(rule_name.encode()).hexdigest()[:12]


def fact_document(fact: Fact | ClaimedFact, profile: Profile | ProfileRow | None) -> dict[str, Any]:
    """What rules see: ``type``, ``fact.*``, ``data.*`` and ``profile.*``."""
    as_fact = fact.as_dict()
    return {
        "type": fact.type,
        "fact": {k: v for k, v in as_fact.items() if k not in ("data", "profile")},
        "data": as_fact["data"],
        "profile": profile.as_dict() if profile is not None else {},
    }


def evaluate_locked(rt: Runtime, session: Any, facts: list[ClaimedFact]) -> bool:
    """Evaluate facts locked in ``session``: match, enqueue actions, record firings.

    Returns whether it stored facts of the hub's own (``profile.created``, ...) that a
    worker should be woken for once the transaction is committed.
    """
    if not facts:
        return False
    engine = rt.engine
    ruleset = engine.ruleset
    refs = [f.profile_ref for f in facts]
    known: dict[int, dict[str, Any]] = {}
    profiles = resolve_profile_rows(session, refs, fields_before=known)
    raised = _profile_facts(facts, profiles, known)
    docs = [fact_document(f, p) for f, p in zip(facts, profiles, strict=True)]
    now = utcnow()
    ctx = DbContext(
        session,
        now,
        batch_profiles={p.id for p in profiles},
        history_types=engine.history_patterns,
        limited_rules=engine.limited_rules,
        batch_facts=[(p.id, f) for f, p in zip(facts, profiles, strict=True)],
    )
    matches = engine.match(docs, ctx)
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
                    "queue": ACTIONS[action.name].queue,
                }
                records.append(record)
                try:
                    run_at = _run_at(action, doc, now)
                except Exception as exc:  # a date from bad data: skip this action only
                    record["skipped"] = f"{type(exc).__name__}: {exc}"
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
    jobs = plan_jobs(actions)  # names each record's batch job before the firings are stored
    bulk_insert(session, RuleFiring.__table__, firings)
    evaluated = FactStatus.EVALUATED.value
    bulk_update(
        session,
        Fact,
        [
            {"id": f.id, "profile_id": p.id, "status": evaluated, "evaluated_at": now}
            for f, p in zip(facts, profiles, strict=True)
        ],
    )
    # Enqueue before the commit: if Redis fails, the transaction rolls back and the facts
    # are evaluated again later; if the commit fails, the jobs' fixed ids and the action
    # ledger make the second evaluation's jobs no-ops.
    _enqueue(rt, jobs)
    return _store_profile_facts(rt, session, raised)


def _run_at(action: ActionCall, doc: dict[str, Any], now: Any) -> Any:
    """When a delayed action is due (None: now). ``at`` renders to a date; past dates run now."""
    if action.after is not None:
        return now + timedelta(seconds=action.after)
    if action.at is not None:
        from hub.templates import render_value

        when = parse_time(
            render_value(
                action.at, {"fact": doc["fact"] | {"data": doc["data"]}, "profile": doc["profile"]}
            )
        )
        if when is None:
            raise ValueError(f"'at' of {action.name} did not give a date: {action.at!r}")
        return max(when, now)
    return None


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
                    "type": "profile.created",
                    "profile": profile.as_dict(),
                    "data": {},
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
                    "type": "profile.updated",
                    "profile": profile.as_dict(),
                    "data": {"changed": changed},
                    "source_id": f"fact-{fact.id}:profile.updated",
                    "cause": cause,
                }
            )
    return out


def _store_profile_facts(rt: Runtime, session: Any, raised: list[dict[str, Any]]) -> bool:
    """Store the hub's own facts in the evaluation's transaction: they commit with it or not
    at all, so a worker that dies after the commit loses none. True if any was stored."""
    from hub.actions.emit import hub_fact
    from hub.facts.ingest import store_facts

    facts = []
    for item in raised:
        fact = hub_fact(
            rt,
            fact_type=item["type"],
            profile=item["profile"],
            data=item["data"],
            source_id=item["source_id"],
            cause_fact=item["cause"],
            rule_name=None,
        )
        if not isinstance(fact, str):
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


class Planned(NamedTuple):
    """One action a firing asks for, before it becomes (part of) an RQ job."""

    action: ActionCall
    key: str
    fact_id: int
    profile_id: int
    rule_name: str
    run_at: Any
    record: dict[str, Any]  # the firing's record of it, told which batch job carries it


def _item(planned: Planned) -> Item:
    """The action as a batch job carries it (see :mod:`hub.actions.batch`)."""
    return (
        ACTIONS[planned.action.name].job,
        planned.key,
        planned.fact_id,
        planned.profile_id,
        planned.rule_name,
        planned.action.params,
    )


def plan_jobs(actions: Sequence[Planned]) -> list[tuple[str, Any, Any]]:
    """The RQ jobs that run ``actions``: ``(queue, prepared job, run_at)``.

    Actions due now go in batch jobs, one per queue and :data:`ACTIONS_PER_JOB` actions
    (see :mod:`hub.actions.batch`); each follow-up is a scheduled job of its own, under its
    action key, so that it can be listed and cancelled one by one.
    """
    jobs: list[tuple[str, Any, Any]] = []
    now_by_queue: dict[str, list[Planned]] = {}
    for planned in actions:
        spec = ACTIONS[planned.action.name]
        if planned.run_at is None:
            now_by_queue.setdefault(spec.queue, []).append(planned)
            continue
        # a follow-up: re-checks ``unless`` when due, then runs the action
        _job, kwargs = unpack(_item(planned))
        kwargs["action"] = planned.action.name
        kwargs["unless"] = to_plain(planned.action.unless) if planned.action.unless else None
        data = Queue.prepare_data(
            "hub.followups.run_followup",
            kwargs=kwargs,
            job_id=planned.key,
            retry=action_retry(),
            result_ttl=ACTION_RESULT_TTL,
            failure_ttl=ACTION_FAILURE_TTL,
        )
        jobs.append((spec.queue, data, planned.run_at))
    for name, planned_now in now_by_queue.items():
        for start in range(0, len(planned_now), ACTIONS_PER_JOB):
            chunk = planned_now[start : start + ACTIONS_PER_JOB]
            keys = "\0".join(p.key for p in chunk)
            batch_id = f"acts-{hashlib.sha1(keys.encode()).hexdigest()[:20]}"
            items = [_item(p) for p in chunk]  # tuples: the payload is pickled, smaller is faster
            for p in chunk:
                p.record["batch_job"] = batch_id
            data = Queue.prepare_data(
                "hub.actions.batch.run_actions",
                kwargs={"queue_name": name, "items": items},
                # by default RQ describes a job with the repr of all its arguments (4 % of an
                # evaluation, measured); the firings record which actions it carries
                description=f"run_actions({len(chunk)} actions on {name})",
                job_id=batch_id,
                retry=BATCH_RETRY,
                timeout=60 + 10 * len(chunk),
                result_ttl=ACTION_RESULT_TTL,
                failure_ttl=ACTION_FAILURE_TTL,
            )
            jobs.append((name, data, None))
    return jobs


def _enqueue(rt: Runtime, jobs: list[tuple[str, Any, Any]]) -> None:
    if not jobs:
        return
    by_queue: dict[str, list[Any]] = {}
    delayed = []
    for name, data, run_at in jobs:
        if run_at is None:
            by_queue.setdefault(name, []).append(data)
        else:
            delayed.append((name, data, run_at))
    with rt.redis.pipeline() as pipe:
        for name, datas in by_queue.items():
            queue(name, rt.redis).enqueue_many(datas, pipeline=pipe)
        for name, data, run_at in delayed:
            queue(name, rt.redis).enqueue_at(
                run_at,
                data.func,
                kwargs=data.kwargs,
                job_id=data.job_id,
                retry=data.retry,
                result_ttl=data.result_ttl,
                failure_ttl=data.failure_ttl,
                pipeline=pipe,
            )
        pipe.execute()
