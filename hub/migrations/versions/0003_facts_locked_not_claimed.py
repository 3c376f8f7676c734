"""facts are locked by the evaluating transaction: no claim columns

A worker now takes a batch of pending facts with row locks held by its evaluation transaction
(``FOR UPDATE SKIP LOCKED``) instead of marking them ``evaluating`` with a claim token and a
lease; a worker that dies releases its locks at once.

Revision ID: 0003_facts_locked
Revises: 0002_connectors
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_facts_locked"
down_revision = "0002_connectors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # facts claimed by a worker of the previous version are simply pending again
    op.execute("UPDATE facts SET status = 'pending' WHERE status = 'evaluating'")
    with op.batch_alter_table("facts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_facts_claim_token"))
        batch_op.drop_column("claim_token")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("attempts")


def downgrade() -> None:
    with op.batch_alter_table("facts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("claim_token", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_facts_claim_token"), ["claim_token"], unique=False)
