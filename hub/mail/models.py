"""Tables of the mail loop: what happened to each mail, bounce reports as received, campaigns.

A ``messages`` row (hub/models.py) is one mail; its results are ``mail_events`` rows (the
first time of each is also kept on the message, for reports and suppression), a bounce or
complaint is kept raw as a ``bounce_reports`` row whether or not it could be read, and a
campaign is its ``campaigns`` row with one ``campaign_recipients`` row per address, which is
what makes a campaign reach each address once.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base
from hub.times import utcnow

BIGINT = BigInteger().with_variant(Integer, "sqlite")


class MailEventKind(enum.StrEnum):
    """What a mail's recipient (or their mail server) did with it."""

    SENT = "sent"
    DELIVERED = "delivered"  # a DSN said so, or no bounce came within the window
    DEFERRED = "deferred"  # a 4xx from the relay, or a DSN ``Action: delayed``
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"


class MailEvent(Base):
    """One result of one mail: an open, a click (with its link), a bounce, an unsubscribe.

    ``machine`` marks what a machine did rather than the reader (a privacy proxy fetching
    every image, a link scanner following every link), with why in ``machine_reason``.
    """

    __tablename__ = "mail_events"
    __table_args__ = (Index("ix_mail_events_profile_kind_at", "profile_id", "kind", "at"),)

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    link: Mapped[int | None] = mapped_column(Integer)  # the link's index in the message
    url: Mapped[str | None] = mapped_column(Text)
    machine: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    machine_reason: Mapped[str | None] = mapped_column(String(200))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(1000))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    def as_dict(self) -> dict[str, Any]:
        """The event as the API shows it."""
        return {
            "id": self.id,
            "message_id": self.message_id,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "link": self.link,
            "url": self.url,
            "machine": self.machine,
            "machine_reason": self.machine_reason,
            "detail": self.detail,
        }


class BounceReport(Base):
    """A bounce, complaint or auto-reply as it arrived, kept raw, with what the hub read in it.

    A report that could not be read (``parsed`` false) or matched to no message is kept too,
    never deleted, and listed for an operator (``hub bounces list --unmatched``).
    """

    __tablename__ = "bounce_reports"

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    via: Mapped[str] = mapped_column(String(20))  # smtp, imap, file
    envelope_to: Mapped[str | None] = mapped_column(String(320))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)  # the same report, kept once
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    parsed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    kind: Mapped[str] = mapped_column(String(20), default="unknown", server_default="unknown")
    recipient: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str | None] = mapped_column(String(16))  # the RFC 3463 code
    diagnostic: Mapped[str | None] = mapped_column(Text)
    original_message_id: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    outcome: Mapped[str | None] = mapped_column(Text)  # what the hub did about it


class CampaignStatus(enum.StrEnum):
    """Where a campaign stands."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class Campaign(Base):
    """A mail to a selection of profiles at a time, sent in batches through the mail path."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    template: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(Text)
    selection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    send_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default=CampaignStatus.DRAFT.value)
    tracking: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class CampaignRecipient(Base):
    """One address of a campaign: unique per campaign, so no address gets a campaign twice."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (UniqueConstraint("campaign_id", "email"),)

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
