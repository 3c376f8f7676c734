"""The mail loop: results per mail, bounce reports kept raw, campaigns

- ``messages`` gains its kind, return path, links, tracking switch, attempts and the first
  time of each result (delivered, opened, clicked, bounced, complained, unsubscribed).
  Existing rows are ``marketing`` with tracking on; nothing else changes.
- ``mail_events``: every result of every mail (hub/mail/models.py).
- ``bounce_reports``: bounces, complaints and auto-replies as received, readable or not.
- ``campaigns`` and ``campaign_recipients`` (one row per address and campaign).

Revision ID: 0008_mail_loop
Revises: 0007_consent_ledger
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_mail_loop"
down_revision = "0007_consent_ledger"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)
RESULTS = ("delivered_at", "opened_at", "clicked_at", "bounced_at", "complained_at",
           "unsubscribed_at")  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(20), nullable=False, server_default="marketing")
        )
        batch.add_column(sa.Column("return_path", sa.String(320)))
        batch.add_column(sa.Column("links", sa.JSON()))
        batch.add_column(
            sa.Column("tracking", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        for name in RESULTS:
            batch.add_column(sa.Column(name, TIME))
    op.create_table(
        "mail_events",
        sa.Column("id", BIGINT, primary_key=True),
        sa.Column(
            "message_id",
            BIGINT,
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("profile_id", BIGINT, sa.ForeignKey("profiles.id", ondelete="SET NULL")),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("link", sa.Integer()),
        sa.Column("url", sa.Text()),
        sa.Column("machine", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("machine_reason", sa.String(200)),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.String(1000)),
        sa.Column("detail", sa.JSON()),
    )
    op.create_index("ix_mail_events_message_id", "mail_events", ["message_id"])
    op.create_index("ix_mail_events_profile_kind_at", "mail_events", ["profile_id", "kind", "at"])
    op.create_table(
        "bounce_reports",
        sa.Column("id", BIGINT, primary_key=True),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("via", sa.String(20), nullable=False),
        sa.Column("envelope_to", sa.String(320)),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("parsed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("kind", sa.String(20), nullable=False, server_default="unknown"),
        sa.Column("recipient", sa.String(320)),
        sa.Column("status", sa.String(16)),
        sa.Column("diagnostic", sa.Text()),
        sa.Column("original_message_id", sa.String(255)),
        sa.Column("message_id", BIGINT, sa.ForeignKey("messages.id", ondelete="SET NULL")),
        sa.Column("outcome", sa.Text()),
    )
    op.create_index("ix_bounce_reports_message_id", "bounce_reports", ["message_id"])
    op.create_table(
        "campaigns",
        sa.Column("id", BIGINT, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("template", sa.String(200), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("selection", sa.JSON(), nullable=False),
        sa.Column("send_at", TIME),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("tracking", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("started_at", TIME),
        sa.Column("finished_at", TIME),
    )
    op.create_table(
        "campaign_recipients",
        sa.Column("id", BIGINT, primary_key=True),
        sa.Column(
            "campaign_id",
            BIGINT,
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("profile_id", BIGINT, sa.ForeignKey("profiles.id", ondelete="SET NULL")),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message_id", BIGINT, sa.ForeignKey("messages.id", ondelete="SET NULL")),
        sa.UniqueConstraint("campaign_id", "email"),
    )
    op.create_index("ix_campaign_recipients_status", "campaign_recipients", ["status"])


def downgrade() -> None:
    op.drop_index("ix_campaign_recipients_status", table_name="campaign_recipients")
    op.drop_table("campaign_recipients")
    op.drop_table("campaigns")
    op.drop_index("ix_bounce_reports_message_id", table_name="bounce_reports")
    op.drop_table("bounce_reports")
    op.drop_index("ix_mail_events_profile_kind_at", table_name="mail_events")
    op.drop_index("ix_mail_events_message_id", table_name="mail_events")
    op.drop_table("mail_events")
    with op.batch_alter_table("messages") as batch:
        for name in reversed(RESULTS):
            batch.drop_column(name)
        for name in ("attempts", "tracking", "links", "return_path", "kind"):
            batch.drop_column(name)
