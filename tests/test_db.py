"""The database layer: pooled PostgreSQL connections survive a server that dropped them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

import hub.db
from hub.db import Database
from hub.models import Base
from tests.conftest import TEST_DATABASE_URL, _postgres_database


@pytest.fixture
def pg_url(postgres_template: str) -> Iterator[str]:
    yield from _postgres_database(postgres_template)


def backend_pid(db: Database) -> int:
    with db.session() as session:
        return session.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_dropped_while_idle_is_replaced_before_use(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(pg_url)
    try:
        first = backend_pid(db)
        assert backend_pid(db) == first  # in steady use: the same pooled connection, no ping
        admin = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:  # a restart, a firewall: the server side is gone
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        admin.dispose()
        monkeypatch.setattr(hub.db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has now sat idle
        second = backend_pid(db)  # pinged, found dead, replaced: the caller sees no error
        assert second != first
    finally:
        db.dispose()


def test_every_models_module_is_found_without_a_list() -> None:
    names = hub.db.import_models()
    assert {"hub.models", "hub.integrations.models"} <= set(names)
    assert all(name.endswith(".models") or name == "hub.models" for name in names)
    tables = set(Base.metadata.tables)
    assert {"profiles", "facts", "rule_firings", "connector_instances", "connector_runs"} <= tables


def test_the_migrations_build_exactly_the_tables_the_models_declare(database_url: str) -> None:
    """A table or column added to a models module without a migration (or the reverse) fails."""
    hub.db.import_models()
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
