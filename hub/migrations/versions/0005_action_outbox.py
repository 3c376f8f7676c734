"""the action outbox: every planned action is a row before its job exists

- ``action_runs`` was the ledger of actions that had taken effect. It now holds every action
  a firing plans, ``planned`` until its job settles it (``done``, ``skipped``, ``cancelled``,
  ``failed``, ``unknown``), with what it takes to enqueue the job again: the sweep re-enqueues
  planned actions whose job Redis no longer has. Rows of earlier releases are settled ones:
  ``cancelled`` and ``skipped:<action>`` become statuses, everything else ``done``.
- ``facts.profile_key``: the contact a fact names, as one string, so that a worker leaves a
  contact's facts to the worker holding its earlier ones (facts of one contact in order).

Revision ID: 0005_action_outbox
Revises: 0004_batch_indexes
Create Date: 2026-12-02
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005_action_outbox"
down_revision = "0004_batch_indexes"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
PLANNED = sa.text("status = 'planned'")


def upgrade() -> None:
    with op.batch_alter_table("action_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(sa.Column("rule_name", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("queue", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("params", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("unless", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("delayed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("batch_job", sa.String(64), nullable=True))
        batch_op.add_column(
            sa.Column("status", sa.String(20), nullable=False, server_default="done")
        )
        batch_op.add_column(sa.Column("outcome", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column(
            "finished_at", existing_type=sa.DateTime(timezone=True), nullable=True
        )
        batch_op.create_foreign_key(
            "fk_action_runs_profile_id_profiles",
            "profiles",
            ["profile_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            "ix_action_runs_planned", ["due_at"], postgresql_where=PLANNED, sqlite_where=PLANNED
        )
        batch_op.create_index("ix_action_runs_profile", ["profile_id"])
    runs = sa.table(
        "action_runs",
        sa.column("action", sa.String),
        sa.column("status", sa.String),
        sa.column("created_at", sa.DateTime),
        sa.column("finished_at", sa.DateTime),
    )
    op.execute(runs.update().where(runs.c.action == "cancelled").values(status="cancelled"))
    op.execute(
        runs.update()
        .where(runs.c.action.like("skipped:%"))
        .values(status="skipped", action=sa.func.substr(runs.c.action, 9))
    )
    op.execute(runs.update().values(created_at=runs.c.finished_at))

    with op.batch_alter_table("facts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile_key", sa.String(400), nullable=True))
        batch_op.create_index(
            "ix_facts_pending_key", ["profile_key"], postgresql_where=PENDING, sqlite_where=PENDING
        )
    _key_pending_facts()


def _key_pending_facts() -> None:
    """Give the facts waiting now their key (evaluated ones never need it)."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, profile_ref FROM facts WHERE status = 'pending'"))
    keys = []
    for fact_id, ref in rows:
        ref = json.loads(ref) if isinstance(ref, str) else (ref or {})
        keys.append({"i": fact_id, "k": profile_key(ref)})
    if keys:
        bind.execute(sa.text("UPDATE facts SET profile_key = :k WHERE id = :i"), keys)


def profile_key(ref: dict) -> str | None:
    """As :func:`hub.facts.schema.profile_key` gave it when this migration was written."""
    if ref.get("email"):
        return str(ref["email"]).lower()
    ids = ref.get("external_ids") or {}
    if ids:
        source = min(ids)
        return f"{source}:{ids[source]}"
    return None


def downgrade() -> None:
    with op.batch_alter_table("facts", schema=None) as batch_op:
        batch_op.drop_index("ix_facts_pending_key")
        batch_op.drop_column("profile_key")
    runs = sa.table(
        "action_runs",
        sa.column("action", sa.String),
        sa.column("status", sa.String),
        sa.column("finished_at", sa.DateTime),
        sa.column("created_at", sa.DateTime),
    )
    op.execute(runs.delete().where(runs.c.status == "planned"))
    op.execute(runs.update().where(runs.c.status == "cancelled").values(action="cancelled"))
    op.execute(
        runs.update()
        .where(runs.c.status == "skipped")
        .values(action=sa.literal("skipped:") + runs.c.action)
    )
    op.execute(
        runs.update()
        .where(runs.c.finished_at.is_(None))
        .values(finished_at=sa.func.coalesce(runs.c.created_at, sa.func.now()))
    )
    with op.batch_alter_table("action_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_action_runs_profile")
        batch_op.drop_index("ix_action_runs_planned")
        batch_op.drop_constraint("fk_action_runs_profile_id_profiles", type_="foreignkey")
        batch_op.alter_column(
            "finished_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        for name in (
            "created_at",
            "due_at",
            "outcome",
            "status",
            "batch_job",
            "delayed",
            "unless",
            "params",
            "queue",
            "rule_name",
            "profile_id",
        ):
            batch_op.drop_column(name)
