"""The pending facts a worker takes: locked for its transaction, read as plain rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select, text

from hub.db import dialect_name
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
        )

    def as_dict(self) -> dict[str, Any]:
        """The fact as rules and templates see it (as :func:`hub.models.fact_dict` gives it)."""
        return fact_dict(self)
