"""Database tables of the hub (SQLAlchemy 2, declarative); migrations live in ``migrations/``."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from hub.times import utcnow


class ProfileStatus(enum.StrEnum):
    """Consent state of a contact; only ``subscribed`` profiles get marketing mail.

    ``unconfirmed`` is "no consent known": the state of every profile a source creates without
    stating consent (hub.profiles.consent). Transactional mail goes to it; marketing does not.
    """

    UNCONFIRMED = "unconfirmed"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


class ConsentOutcome(enum.StrEnum):
    """What a consent statement did to the profile's status."""

    APPLIED = "applied"  # the status changed to what was stated
    UNCHANGED = "unchanged"  # it was that already
    IGNORED = "ignored"  # not enough to change it (see ``reason``): a plain sync's opt-in


class FactStatus(enum.StrEnum):
    """Where a fact is on its way through the rules."""

    PENDING = "pending"  # stored, waiting for a worker (or locked by one evaluating it)
    EVALUATED = "evaluated"  # rules matched, firings stored, action jobs enqueued
    FAILED = "failed"  # could not be evaluated (see ``error``)


class MessageStatus(enum.StrEnum):
    """Delivery state of one mail."""

    SENDING = "sending"  # handed to the transport; outcome unknown until ``sent``
    SENT = "sent"
    SKIPPED = "skipped"  # not sent on purpose (profile not subscribed); see ``error``
    FAILED = "failed"
    UNKNOWN = "unknown"  # a crash after handing it over: not resent (see send_mail)


class ActionStatus(enum.StrEnum):
    """Where one action of a rule firing stands: the outbox and ledger of action jobs.

    The evaluation records every action ``planned`` in the transaction that stores the
    firing; the job that carries it out settles it, effect and status committed together.
    """

    PLANNED = "planned"  # recorded; its RQ job is (or, after an outage, will be) in Redis
    DONE = "done"  # took effect (``outcome`` says what it did, "nothing changed" included)
    SKIPPED = "skipped"  # not carried out on purpose: consent, ``unless``, profile deleted
    CANCELLED = "cancelled"  # a follow-up cancelled before it was due
    FAILED = "failed"  # gave up: a fatal error or its retries exhausted (see ``outcome``)
    UNKNOWN = "unknown"  # a mail whose delivery a crash interrupted: never resent


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are always timezone-aware UTC, also on SQLite (which stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Bind as UTC; a naive value is taken to be UTC already, and SQLite gets it naive."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Read back as aware UTC (SQLite gives naive values)."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Base class of the tables: JSON objects and datetimes map to JSON and UTC columns."""

    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class Profile(Base):
    """A contact: email, consent status, custom fields, tags and ids in other systems.

    The email is stored lower-cased and is unique; a profile may have none (known by an external
    id only).
    """

    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # Stored lower-cased: the unique index makes email case-insensitive on every database.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=ProfileStatus.UNCONFIRMED.value)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    external_ids: Mapped[list[ExternalId]] = relationship(
        back_populates="profile", cascade="all, delete-orphan", lazy="selectin"
    )

    def as_dict(self) -> dict[str, Any]:
        """The profile as rules and templates see it."""
        return profile_dict(self, {x.source: x.external_id for x in self.external_ids})


def profile_dict(profile: Any, external_ids: dict[str, str]) -> dict[str, Any]:
    """A profile as rules and templates see it, from an ORM object or a plain row."""
    return {
        "id": profile.id,
        "email": profile.email,
        "status": profile.status,
        "fields": dict(profile.fields or {}),
        "tags": list(profile.tags or []),
        "external_ids": dict(external_ids),
        "created_at": profile.created_at.isoformat() if profile.created_at else None,
        "updated_at": profile.updated_at.isoformat() if profile.updated_at else None,
    }


class ExternalId(Base):
    """The id a profile has in another system (``magento: 42``)."""

    __tablename__ = "profile_external_ids"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(255))

    profile: Mapped[Profile] = relationship(back_populates="external_ids")


class Fact(Base):
    """Something that happened, as a source reported it, and how far the rules have taken it.

    ``(source, source_id)`` is unique, so a repeated delivery is a duplicate, not a second fact.
    ``profile_ref`` names the contact as the source did; ``profile_id`` is the profile it was
    resolved to.
    """

    __tablename__ = "facts"
    __table_args__ = (
        UniqueConstraint("source", "source_id", name="uq_facts_source_source_id"),
        # the queue of facts waiting for a worker: only pending facts are in it
        Index(
            "ix_facts_pending",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # a contact's pending facts, so a worker can leave them to the one holding earlier ones
        Index(
            "ix_facts_pending_key",
            "profile_key",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    type: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str | None] = mapped_column(String(255))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    profile_ref: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # the contact as one string (its email, else its first external id): facts of one key are
    # evaluated in order, by one worker at a time (see hub.worker.pending)
    profile_key: Mapped[str | None] = mapped_column(String(400))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("profiles.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default=FactStatus.PENDING.value)
    evaluated_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)

    firings: Mapped[list[RuleFiring]] = relationship(
        back_populates="fact", order_by="RuleFiring.id", lazy="select"
    )

    def as_dict(self) -> dict[str, Any]:
        """The fact as rules and templates see it."""
        return fact_dict(self)


def fact_dict(fact: Any) -> dict[str, Any]:
    """A fact as rules and templates see it, from an ORM object or a plain row."""
    return {
        "id": fact.id,
        "type": fact.type,
        "source": fact.source,
        "source_id": fact.source_id,
        "occurred_at": fact.occurred_at.isoformat(),
        "profile": dict(fact.profile_ref or {}),
        "data": dict(fact.data or {}),
    }


class RuleFiring(Base):
    """One rule firing on one fact: the answer to "why did this contact get this mail?"."""

    __tablename__ = "rule_firings"
    __table_args__ = (
        UniqueConstraint("fact_id", "rule_name", name="uq_firings_fact_rule"),
        Index("ix_rule_firings_profile_rule", "profile_id", "rule_name"),  # for rule limits
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    fact_id: Mapped[int] = mapped_column(ForeignKey("facts.id", ondelete="CASCADE"))
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id", ondelete="SET NULL"))
    rule_name: Mapped[str] = mapped_column(String(200))
    rule_file: Mapped[str] = mapped_column(String(500))
    ruleset_version: Mapped[str] = mapped_column(String(64))
    jobs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    fired_at: Mapped[datetime] = mapped_column(default=utcnow)

    fact: Mapped[Fact] = relationship(back_populates="firings")


class ActionRun(Base):
    """One action of a rule firing: the outbox of action jobs and their ledger in one row.

    Written ``planned`` by the evaluation, in the transaction of its firing, with what it
    takes to enqueue the job again (the sweep does, when Redis lost it); settled by the job,
    in the transaction of its effect, so a job run twice acts once.
    """

    __tablename__ = "action_runs"
    __table_args__ = (
        # the sweep's look-up: actions due, not yet settled
        Index(
            "ix_action_runs_planned",
            "due_at",
            postgresql_where=text("status = 'planned'"),
            sqlite_where=text("status = 'planned'"),
        ),
        Index("ix_action_runs_profile", "profile_id"),
    )

    job_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    action: Mapped[str] = mapped_column(String(64))
    fact_id: Mapped[int | None] = mapped_column(ForeignKey("facts.id", ondelete="SET NULL"))
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id", ondelete="SET NULL"))
    rule_name: Mapped[str | None] = mapped_column(String(200))
    queue: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    unless: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # a follow-up's re-check
    delayed: Mapped[bool] = mapped_column(default=False)  # a follow-up: its own scheduled job
    batch_job: Mapped[str | None] = mapped_column(String(64))  # the batch job carrying it
    status: Mapped[str] = mapped_column(String(20), default=ActionStatus.DONE.value)
    outcome: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=utcnow)


class Message(Base):
    """One mail: who it went to, from which template and rule, and how delivery went."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(200), unique=True)
    profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("profiles.id", ondelete="SET NULL"), index=True
    )
    fact_id: Mapped[int | None] = mapped_column(ForeignKey("facts.id", ondelete="SET NULL"))
    rule_name: Mapped[str | None] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(200))
    to_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=MessageStatus.SENDING.value)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # The mail loop (hub/mail/): what kind of mail, where its bounces come back, which links
    # it held (a click may only go to one of them), and the first time of each result. The
    # events themselves are ``mail_events`` rows; a campaign's recipients name their message.
    kind: Mapped[str] = mapped_column(String(20), default="marketing", server_default="marketing")
    return_path: Mapped[str | None] = mapped_column(String(320))
    links: Mapped[list[str] | None] = mapped_column(JSON)
    tracking: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    delivered_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]
    bounced_at: Mapped[datetime | None]
    complained_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]


class ApiKey(Base):
    """An API key; only its SHA-256 digest is stored, the key is shown once at creation.

    ``sources`` scopes the key: None lets it post facts of any source that is not reserved
    (a connector's, ``hub``); a list lets it post those sources only, a connector's included
    when listed (see :mod:`hub.apikeys`).
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    sources: Mapped[list[str] | None] = mapped_column(JSON)


class ConsentEvent(Base):
    """One statement of marketing consent about a profile, with its proof: the consent ledger.

    Every statement is kept, applied or not, so that the hub can show who said what, when and
    on what evidence (GDPR art. 7(1): the controller must be able to demonstrate consent).
    The rows go with the profile when it is deleted (erasure).
    """

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_profile", "profile_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    fact_id: Mapped[int | None] = mapped_column(ForeignKey("facts.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(200))  # a fact source, an API, ``rule:<name>``
    stated: Mapped[str] = mapped_column(String(20))  # subscribed, unsubscribed, bounced, ...
    explicit: Mapped[bool] = mapped_column(Boolean, default=False)
    status_before: Mapped[str] = mapped_column(String(20))
    status_after: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    proof: Mapped[str] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stated_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    def as_dict(self) -> dict[str, Any]:
        """The entry as the API and the timeline show it."""
        return {
            "id": self.id,
            "fact_id": self.fact_id,
            "source": self.source,
            "stated": self.stated,
            "explicit": self.explicit,
            "status_before": self.status_before,
            "status_after": self.status_after,
            "outcome": self.outcome,
            "reason": self.reason,
            "proof": self.proof,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "evidence": dict(self.evidence or {}),
            "stated_at": self.stated_at.isoformat() if self.stated_at else None,
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
        }
