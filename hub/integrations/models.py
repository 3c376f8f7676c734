"""Tables of the connectors: configured instances, pull cursors, run records, OAuth state.

Secrets never sit in clear text: ``ConnectorInstance.secrets`` and ``ConnectorState.sealed``
hold Fernet tokens made by :mod:`hub.integrations.secrets`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base
from hub.times import utcnow


class RunStatus(enum.StrEnum):
    """Where a pull run is."""

    RUNNING = "running"
    RETRYING = "retrying"  # an attempt failed in a way a retry can fix; one is scheduled
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # retries exhausted, or a failure retrying cannot fix


class ConnectorInstance(Base):
    """One configured installation of a connector: a shop, a site, an Exact division."""

    __tablename__ = "connector_instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    connector: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the non-secret values
    secrets: Mapped[str | None] = mapped_column(Text)  # sealed JSON of the secret values
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    pull_interval_seconds: Mapped[int | None] = mapped_column(Integer)  # None: no schedule
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConnectorCursor(Base):
    """How far a stream of an instance has been pulled; moved only after its facts are stored."""

    __tablename__ = "connector_cursors"

    instance_id: Mapped[int] = mapped_column(
        ForeignKey("connector_instances.id", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConnectorState(Base):
    """Durable secret state a connector keeps between runs (OAuth tokens), sealed."""

    __tablename__ = "connector_states"

    instance_id: Mapped[int] = mapped_column(
        ForeignKey("connector_instances.id", ondelete="CASCADE"), primary_key=True
    )
    sealed: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConnectorRun(Base):
    """One pull run of one stream: what it made, how it ended, where the cursor went."""

    __tablename__ = "connector_runs"
    __table_args__ = (Index("ix_connector_runs_instance_stream", "instance_id", "stream", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("connector_instances.id", ondelete="CASCADE")
    )
    stream: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.RUNNING.value)
    trigger: Mapped[str] = mapped_column(String(20), default="schedule")  # schedule|manual|cli
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    facts_accepted: Mapped[int] = mapped_column(Integer, default=0)
    facts_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    cursor_before: Mapped[str | None] = mapped_column(String(255))
    cursor_after: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    def as_dict(self) -> dict[str, Any]:
        """The run as the CLI and API show it, times in ISO 8601."""
        return {
            "id": self.id,
            "stream": self.stream,
            "status": self.status,
            "trigger": self.trigger,
            "attempts": self.attempts,
            "pages": self.pages,
            "facts_accepted": self.facts_accepted,
            "facts_duplicate": self.facts_duplicate,
            "cursor_before": self.cursor_before,
            "cursor_after": self.cursor_after,
            "error": self.error,
            "next_attempt_at": _iso(self.next_attempt_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class RefusedDelivery(Base):
    """A signed webhook delivery the connector could not parse, kept whole for an operator.

    A remote that is answered "success" anyway (Adobe Commerce: a refusal must not abort a
    checkout) would otherwise lose the delivery without a trace. The body is kept as received
    so that, once the cause is fixed, it can be posted again.
    """

    __tablename__ = "refused_deliveries"
    __table_args__ = (Index("ix_refused_deliveries_instance", "instance_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("connector_instances.id", ondelete="CASCADE")
    )
    field: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    def as_dict(self) -> dict[str, Any]:
        """The refusal as the API shows it (the body as text, undecodable bytes replaced)."""
        return {
            "id": self.id,
            "field": self.field,
            "message": self.message,
            "content_type": self.content_type,
            "size": len(self.body),
            "body": self.body[:65536].decode("utf-8", "replace"),
            "received_at": _iso(self.received_at),
        }
