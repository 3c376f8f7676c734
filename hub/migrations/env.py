"""Alembic environment: runs migrations on the engine the hub hands over (or builds one)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from hub.db import import_models
from hub.models import Base

import_models()  # every module named ``models``: all tables, none listed by hand
config = context.config
engine = config.attributes.get("engine") or create_engine(
    config.get_main_option("sqlalchemy.url") or ""
)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
