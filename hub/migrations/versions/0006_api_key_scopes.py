"""API keys scoped to sources

- ``api_keys.sources``: the fact sources a key may post (a JSON list), or NULL for any source
  that is not reserved for a connector or the hub. Keys of earlier releases stay unscoped.

Revision ID: 0006_api_key_scopes
Revises: 0005_action_outbox
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_api_key_scopes"
down_revision = "0005_action_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sources", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("sources")
