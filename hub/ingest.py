"""Storing facts: the one door every entry point goes through.

A fact is committed before the caller is answered; a duplicate delivery (same ``source`` and
``source_id``) gives back the fact stored the first time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import insert, select, tuple_
from sqlalchemy.exc import IntegrityError

from hub.config import Settings
from hub.db import Database
from hub.facts import FactIn
from hub.models import Fact, FactStatus, utcnow
from hub.queue import request_evaluation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    id: int
    status: str  # "accepted" or "duplicate"


def store_facts(db: Database, facts: Sequence[FactIn]) -> list[Stored]:
    """Commit ``facts`` in one transaction, all or nothing; one result per fact, in order."""
    for attempt in range(3):
        try:
            return _store(db, facts)
        except IntegrityError:
            # another request stored the same source_id between our look-up and insert
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _store(db: Database, facts: Sequence[FactIn]) -> list[Stored]:
    keys = {(f.source, f.source_id) for f in facts if f.source_id is not None}
    with db.session() as session:
        known: dict[tuple[str, str | None], int] = {}
        if keys:
            rows = session.execute(
                select(Fact.source, Fact.source_id, Fact.id).where(
                    tuple_(Fact.source, Fact.source_id).in_(keys)
                )
            )
            known = {(s, sid): fid for s, sid, fid in rows}
        now = utcnow()
        rows_to_insert: list[dict[str, Any]] = []
        plan: list[tuple[str, Any]] = []  # ("known", id) | ("new", row index) | ("dup", row index)
        first_in_request: dict[tuple[str, str], int] = {}
        for fact in facts:
            key = (fact.source, fact.source_id)
            if fact.source_id is not None and key in known:
                plan.append(("known", known[key]))
            elif fact.source_id is not None and key in first_in_request:
                plan.append(("dup", first_in_request[key]))
            else:
                if fact.source_id is not None:
                    first_in_request[key] = len(rows_to_insert)  # type: ignore[index]
                plan.append(("new", len(rows_to_insert)))
                rows_to_insert.append(_row(fact, now))
        new_ids: list[int] = []
        if rows_to_insert:
            result = session.execute(
                insert(Fact).returning(Fact.id, sort_by_parameter_order=True), rows_to_insert
            )
            new_ids = [row[0] for row in result]
    out = []
    for kind, ref in plan:
        if kind == "known":
            out.append(Stored(ref, "duplicate"))
        elif kind == "dup":
            out.append(Stored(new_ids[ref], "duplicate"))
        else:
            out.append(Stored(new_ids[ref], "accepted"))
    return out


def _row(fact: FactIn, now: Any) -> dict[str, Any]:
    return {
        "type": fact.type,
        "source": fact.source,
        "source_id": fact.source_id,
        "occurred_at": fact.occurred_at or now,
        "received_at": now,
        "profile_ref": fact.profile.model_dump(exclude_none=True, exclude_defaults=True),
        "data": fact.data,
        "status": FactStatus.PENDING.value,
        "attempts": 0,
    }


def notify(settings: Settings, connection: Redis) -> None:
    """Wake a worker; if Redis is down the facts wait for the sweep, nothing is lost."""
    try:
        request_evaluation(settings, connection)
    except RedisError as exc:
        log.warning("facts stored but no worker woken (the sweep will pick them up): %s", exc)
