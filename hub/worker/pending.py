"""The pending facts a worker takes: locked for its transaction, read as plain rows.

Facts of one contact are evaluated in order, by one worker at a time, so that history
conditions ("first visit", "twentieth order") and field merges see what one worker would
have seen. Workers lock disjoint batches (``SKIP LOCKED``); a worker whose batch holds a
contact's fact while an earlier fact of that contact is still pending outside its batch (held
by another worker, or not taken yet) leaves the later facts pending (:func:`in_turn`): the
worker holding the earlier fact evaluates it first, and the later ones follow in a next batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select, text

from hub.db import dialect_name, one_of
from hub.models import Fact, FactStatus, fact_dict

IDLE_IN_BATCH_SECONDS = 60  # PostgreSQL ends a batch transaction left idle this long


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


def in_turn(session: Any, facts: Sequence[ClaimedFact]) -> tuple[list[ClaimedFact], int]:
    """The facts of ``facts`` whose turn it is, and how many must wait for an earlier one.

    A fact waits when a fact of the same contact with a lower id is pending and not in this
    batch: another worker holds it (its uncommitted evaluation still reads as pending), or it
    is about to be taken. The waiting facts stay pending, unchanged, and are taken again once
    their locks are released.
    """
    keys = {f.profile_key for f in facts if f.profile_key is not None}
    if not keys:
        return list(facts), 0
    mine = {f.id for f in facts}
    top = max(mine)
    query = select(Fact.profile_key, Fact.id).where(
        Fact.status == FactStatus.PENDING.value,
        one_of(session, Fact.profile_key, keys),
        Fact.id < top,
    )
    first_elsewhere: dict[str, int] = {}
    for key, fact_id in session.execute(query):
        if fact_id not in mine and fact_id < first_elsewhere.get(key, top + 1):
            first_elsewhere[key] = fact_id
    if not first_elsewhere:
        return list(facts), 0
    ready = [
        f
        for f in facts
        if f.profile_key is None or f.id < first_elsewhere.get(f.profile_key, top + 1)
    ]
    return ready, len(facts) - len(ready)


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
    profile_key: str | None  # the contact (see hub.facts.ingest.profile_key)

    @staticmethod
    def columns() -> tuple[Any, ...]:
        """The columns to select, in field order: ``ClaimedFact(*row)`` reads a row of them."""
        return (
            Fact.id,
            Fact.type,
            Fact.source,
            Fact.source_id,
            Fact.occurred_at,
            Fact.profile_ref,
            Fact.data,
            Fact.evaluated_at,
            Fact.profile_key,
        )

    def as_dict(self) -> dict[str, Any]:
        """The fact as rules and templates see it (as :func:`hub.models.fact_dict` gives it)."""
        return fact_dict(self)
