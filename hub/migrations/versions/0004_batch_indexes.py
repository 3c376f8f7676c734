"""indexes shaped for the evaluation's look-ups

- ``facts``: the queue of pending facts is a partial index on ``id`` where the status is
  ``pending``, instead of ``(status, id)`` over every fact ever stored. Marking a fact
  evaluated no longer adds an entry to it, and it stays as small as the backlog.
- ``rule_firings``: rule limits read a profile's firings of a few rules; ``(profile_id,
  rule_name)`` finds them directly (``profile_id`` alone read all of a profile's firings).

Revision ID: 0004_batch_indexes
Revises: 0003_facts_locked
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_batch_indexes"
down_revision = "0003_facts_locked"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("facts", schema=None) as batch_op:
        batch_op.drop_index("ix_facts_status_id")
        batch_op.create_index(
            "ix_facts_pending", ["id"], postgresql_where=PENDING, sqlite_where=PENDING
        )
    with op.batch_alter_table("rule_firings", schema=None) as batch_op:
        batch_op.drop_index("ix_rule_firings_profile_id")
        batch_op.create_index("ix_rule_firings_profile_rule", ["profile_id", "rule_name"])


def downgrade() -> None:
    with op.batch_alter_table("rule_firings", schema=None) as batch_op:
        batch_op.drop_index("ix_rule_firings_profile_rule")
        batch_op.create_index("ix_rule_firings_profile_id", ["profile_id"])
    with op.batch_alter_table("facts", schema=None) as batch_op:
        batch_op.drop_index("ix_facts_pending")
        batch_op.create_index("ix_facts_status_id", ["status", "id"])
