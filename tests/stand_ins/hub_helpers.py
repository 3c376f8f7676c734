"""Helpers for connector tests: configure an instance, run pulls, read what was stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from hub.integrations.models import ConnectorCursor, ConnectorInstance, ConnectorRun
from hub.integrations.secrets import SecretBox
from hub.integrations.store import save_instance
from hub.models import ExternalId, Fact, Profile
from hub.runtime import Runtime


def add_instance(rt: Runtime, name: str, connector: str, **config: Any) -> None:
    save_instance(rt.db, SecretBox(rt.settings.secret_key), name, connector, config)


def facts(rt: Runtime, **where: Any) -> list[Fact]:
    with rt.db.session() as s:
        q = select(Fact).order_by(Fact.id)
        for key, value in where.items():
            q = q.where(getattr(Fact, key) == value)
        return list(s.scalars(q))


def fact_count(rt: Runtime) -> int:
    with rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(Fact)) or 0


def profile_by_external(rt: Runtime, source: str, ext_id: str) -> dict[str, Any] | None:
    with rt.db.session() as s:
        p = s.scalar(
            select(Profile)
            .join(ExternalId, ExternalId.profile_id == Profile.id)
            .where(ExternalId.source == source, ExternalId.external_id == ext_id)
        )
        return p.as_dict() if p else None


def profile_by_email(rt: Runtime, email: str) -> dict[str, Any] | None:
    with rt.db.session() as s:
        p = s.scalar(select(Profile).where(Profile.email == email))
        return p.as_dict() if p else None


def cursor(rt: Runtime, instance: str, stream: str) -> str | None:
    with rt.db.session() as s:
        inst = s.scalar(select(ConnectorInstance).where(ConnectorInstance.name == instance))
        row = s.get(ConnectorCursor, (inst.id, stream)) if inst else None
        return row.value if row else None


def run(rt: Runtime, run_id: int) -> dict[str, Any]:
    with rt.db.session() as s:
        r = s.get(ConnectorRun, run_id)
        assert r is not None
        return r.as_dict()
