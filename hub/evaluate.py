"""Evaluating stored facts against the rules, in batches, as RQ jobs on the ``facts`` queue.

The facts table is the queue of record: ingest commits facts as ``pending``; a drain job
claims a batch (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), matches it, enqueues every action
job in one Redis pipeline, then records the firings and marks the facts ``evaluated`` in one
transaction. A worker that dies leaves its claim to expire; the sweep hands it back.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from rq import Queue, Retry
from sqlalchemy import select, update

from hub import runtime
from hub.actions import ACTIONS
from hub.models import Fact, FactStatus, Profile, RuleFiring, utcnow
from hub.profiles import resolve_profiles
from hub.queue import queue, request_evaluation, wake_key
from hub.runtime import Runtime

log = logging.getLogger(__name__)

MAX_JOB_SECONDS = 20  # a drain job hands over after this; keeps jobs far below RQ's timeouts
ACTION_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])


def drain_pending() -> int:
    """RQ job: evaluate pending facts batch by batch; return how many were evaluated."""
    rt = runtime.get()
    rt.redis.delete(wake_key(rt.settings))
    started = time.monotonic()
    total = 0
    while True:
        token = uuid.uuid4().hex
        ids = claim_batch(rt, token)
        if not ids:
            return total
        if len(ids) == rt.settings.fact_batch_size:
            request_evaluation(rt.settings, rt.redis)  # more waiting: let another worker join
        evaluate_isolating(rt, token, ids)
        total += len(ids)
        if time.monotonic() - started > MAX_JOB_SECONDS:
            request_evaluation(rt.settings, rt.redis)
            return total


def claim_batch(rt: Runtime, token: str) -> list[int]:
    """Mark up to one batch of pending facts as ours; return their ids."""
    with rt.db.session() as session:
        pending = (
            select(Fact.id)
            .where(Fact.status == FactStatus.PENDING.value)
            .order_by(Fact.id)
            .limit(rt.settings.fact_batch_size)
            .with_for_update(skip_locked=True)
        )
        ids = list(session.scalars(pending))
        if ids:
            session.execute(
                update(Fact)
                .where(Fact.id.in_(ids))
                .values(
                    status=FactStatus.EVALUATING.value,
                    claim_token=token,
                    claimed_at=utcnow(),
                    attempts=Fact.attempts + 1,
                )
            )
    return ids


def evaluate_isolating(rt: Runtime, token: str, ids: list[int]) -> None:
    """Evaluate a claimed batch; if it fails, evaluate fact by fact so one bad fact fails alone."""
    try:
        evaluate_claimed(rt, token)
        return
    except Exception:
        log.exception("batch of %d facts failed; evaluating them one by one", len(ids))
    for fact_id in ids:
        single = uuid.uuid4().hex
        with rt.db.session() as session:
            session.execute(
                update(Fact)
                .where(Fact.id == fact_id, Fact.claim_token == token)
                .values(claim_token=single)
            )
        try:
            evaluate_claimed(rt, single)
        except Exception as exc:
            log.exception("fact %d could not be evaluated", fact_id)
            with rt.db.session() as session:
                session.execute(
                    update(Fact)
                    .where(Fact.id == fact_id, Fact.claim_token == single)
                    .values(
                        status=FactStatus.FAILED.value,
                        claim_token=None,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                )


def job_key(fact_id: int, rule_name: str, index: int) -> str:
    """The deterministic RQ job id of one action: same fact, rule and index, same job."""
    rule = hashlib.sha1(rule_name.encode()).hexdigest()[:12]
    return f"act-{fact_id}-{rule}-{index}"


def fact_document(fact: Fact, profile: Profile | None) -> dict[str, Any]:
    """What rules see: ``type``, ``fact.*``, ``data.*`` and ``profile.*``."""
    as_fact = fact.as_dict()
    return {
        "type": fact.type,
        "fact": {k: v for k, v in as_fact.items() if k not in ("data", "profile")},
        "data": as_fact["data"],
        "profile": profile.as_dict() if profile is not None else {},
    }


def evaluate_claimed(rt: Runtime, token: str) -> None:
    """Evaluate the facts claimed under ``token``: match, enqueue actions, record firings."""
    engine = rt.engine
    ruleset = engine.ruleset
    with rt.db.session() as session:
        facts = list(
            session.scalars(select(Fact).where(Fact.claim_token == token).order_by(Fact.id))
        )
        if not facts:
            return
        profiles = resolve_profiles(session, [f.profile_ref for f in facts])
        docs = [fact_document(f, p) for f, p in zip(facts, profiles, strict=True)]
        matches = engine.match(docs)
        already = _existing_firings(session, [f.id for f in facts])
        jobs: list[Any] = []
        firings = []
        now = utcnow()
        for fact, profile, rules in zip(facts, profiles, matches, strict=True):
            fact.profile_id = profile.id
            fact.status = FactStatus.EVALUATED.value
            fact.evaluated_at = now
            fact.claim_token = None
            fact.error = None
            for rule in rules:
                if (fact.id, rule.name) in already:
                    continue  # evaluated before: its actions were enqueued then
                records = []
                for index, action in enumerate(rule.actions):
                    key = job_key(fact.id, rule.name, index)
                    jobs.append(
                        _prepare(action.name, key, fact.id, profile.id, rule.name, action.params)
                    )
                    records.append(
                        {"job_id": key, "action": action.name, "queue": ACTIONS[action.name].queue}
                    )
                firings.append(
                    RuleFiring(
                        fact_id=fact.id,
                        profile_id=profile.id,
                        rule_name=rule.name,
                        rule_file=rule.file,
                        ruleset_version=ruleset.version,
                        jobs=records,
                        fired_at=now,
                    )
                )
        session.add_all(firings)
        session.flush()
        # Enqueue before the commit: if Redis fails, the transaction rolls back and the facts
        # are evaluated again later; if the commit fails, the jobs' fixed ids and the action
        # ledger make the second evaluation's jobs no-ops.
        _enqueue(rt, jobs)


def _existing_firings(session: Any, fact_ids: Sequence[int]) -> set[tuple[int, str]]:
    rows = session.execute(
        select(RuleFiring.fact_id, RuleFiring.rule_name).where(RuleFiring.fact_id.in_(fact_ids))
    )
    return {(fid, name) for fid, name in rows}


def _prepare(
    action: str, key: str, fact_id: int, profile_id: int, rule_name: str, params: dict[str, Any]
) -> tuple[str, Any]:
    spec = ACTIONS[action]
    kwargs: dict[str, Any] = {
        "job_key": key,
        "fact_id": fact_id,
        "profile_id": profile_id,
        "params": params,
    }
    if action == "send_mail":
        kwargs["rule_name"] = rule_name
    data = Queue.prepare_data(
        spec.job,
        kwargs=kwargs,
        job_id=key,
        retry=ACTION_RETRY,
        result_ttl=86400,
        failure_ttl=30 * 86400,
    )
    return spec.queue, data


def _enqueue(rt: Runtime, jobs: list[tuple[str, Any]]) -> None:
    if not jobs:
        return
    by_queue: dict[str, list[Any]] = {}
    for name, data in jobs:
        by_queue.setdefault(name, []).append(data)
    with rt.redis.pipeline() as pipe:
        for name, datas in by_queue.items():
            queue(name, rt.redis).enqueue_many(datas, pipeline=pipe)
        pipe.execute()


def release_expired_claims(rt: Runtime, lease: timedelta | None = None) -> int:
    """Hand facts claimed by a worker that died back to ``pending``; return how many."""
    lease = lease or timedelta(seconds=rt.settings.claim_lease_seconds)
    with rt.db.session() as session:
        result = session.execute(
            update(Fact)
            .where(Fact.status == FactStatus.EVALUATING.value, Fact.claimed_at < utcnow() - lease)
            .values(status=FactStatus.PENDING.value, claim_token=None)
        )
        return result.rowcount or 0
