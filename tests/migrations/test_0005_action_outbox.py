"""Migration 0005: the ledger of earlier releases becomes settled outbox rows, and back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, text

from hub.db import alembic_config

NOW = "2026-11-30 10:00:00"


def test_earlier_ledger_rows_become_settled_outbox_rows_and_pending_facts_get_their_key(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    config = alembic_config(database_url, engine)
    try:
        command.downgrade(config, "0004_batch_indexes")
        with engine.begin() as conn:
            for fid, status, ref in (
                (1, "evaluated", '{"email": "ann@example.com"}'),
                (2, "pending", '{"email": "bob@example.com"}'),
                (3, "pending", '{"external_ids": {"shop": "7", "erp": "E1"}}'),
            ):
                conn.execute(
                    text(
                        "INSERT INTO facts (id, type, source, occurred_at, received_at,"
                        " profile_ref, data, status) VALUES (:id, 't', 'api', :now, :now,"
                        " :ref, '{}', :status)"
                    ),
                    {"id": fid, "now": NOW, "ref": ref, "status": status},
                )
            for job_id, action in (
                ("act-1-a-0", "update_profile"),
                ("act-1-a-1", "cancelled"),
                ("act-1-a-2", "skipped:send_mail"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO action_runs (job_id, action, fact_id, finished_at)"
                        " VALUES (:j, :a, 1, :now)"
                    ),
                    {"j": job_id, "a": action, "now": NOW},
                )
        command.upgrade(config, "heads")
        with engine.connect() as conn:
            runs = conn.execute(
                text("SELECT job_id, action, status FROM action_runs ORDER BY job_id")
            ).all()
            keys = dict(conn.execute(text("SELECT id, profile_key FROM facts")).all())
        assert [tuple(r) for r in runs] == [
            ("act-1-a-0", "update_profile", "done"),
            ("act-1-a-1", "cancelled", "cancelled"),
            ("act-1-a-2", "send_mail", "skipped"),
        ]
        assert keys == {1: None, 2: "bob@example.com", 3: "erp:E1"}
        command.downgrade(config, "0004_batch_indexes")
        with engine.connect() as conn:
            runs = conn.execute(
                text("SELECT job_id, action FROM action_runs ORDER BY job_id")
            ).all()
        assert [tuple(r) for r in runs] == [
            ("act-1-a-0", "update_profile"),
            ("act-1-a-1", "cancelled"),
            ("act-1-a-2", "skipped:send_mail"),
        ]
        command.upgrade(config, "heads")
    finally:
        engine.dispose()
