"""The consent ledger and kept refused deliveries

- ``consent_events``: every statement of marketing consent about a profile, with its proof
  (hub.profiles.consent). No row is made for existing profiles, and no status changes: a
  profile created ``subscribed`` by an earlier release's default stays so until an operator
  re-classifies it (``hub consent reclassify``, docs/operations.md).
- ``refused_deliveries``: signed webhook deliveries a connector could not parse, kept whole.

Revision ID: 0007_consent_ledger
Revises: 0006_api_key_scopes
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_consent_ledger"
down_revision = "0006_api_key_scopes"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column("id", BIGINT, primary_key=True),
        sa.Column(
            "profile_id",
            BIGINT,
            sa.ForeignKey("profiles.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("fact_id", BIGINT, sa.ForeignKey("facts.id", ondelete="SET NULL")),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("stated", sa.String(20), nullable=False),
        sa.Column("explicit", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status_before", sa.String(20), nullable=False),
        sa.Column("status_after", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("proof", sa.Text(), nullable=False),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.Text()),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("stated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_consent_events_profile", "consent_events", ["profile_id", "id"])
    op.create_table(
        "refused_deliveries",
        sa.Column("id", BIGINT, primary_key=True),
        sa.Column(
            "instance_id",
            sa.Integer(),
            sa.ForeignKey("connector_instances.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("field", sa.String(255)),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(255)),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_refused_deliveries_instance", "refused_deliveries", ["instance_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_refused_deliveries_instance", table_name="refused_deliveries")
    op.drop_table("refused_deliveries")
    op.drop_index("ix_consent_events_profile", table_name="consent_events")
    op.drop_table("consent_events")
