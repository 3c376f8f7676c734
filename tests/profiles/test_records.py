"""A record deleted in a source: its link goes (or the profile), an unknown id creates nobody."""

from __future__ import annotations

from sqlalchemy import func, select

from hub.models import ExternalId, Fact, FactStatus, Profile
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from tests.worker.test_evaluate import post


def _deleted(ext_id: str, action: str = "unlink", source: str = "erp", **data: str) -> dict:
    return {
        "type": "record.deleted",
        "source": source,
        "source_id": f"del-{ext_id}-{action}",
        "profile": {"external_ids": {"erp": ext_id}, "create": False},
        "data": {"source": "erp", "external_id": ext_id, "action": action} | data,
    }


def _known(rt: Runtime, ext_id: str = "A1") -> None:
    post(
        rt,
        {
            "type": "account.updated",
            "source": "erp",
            "profile": {"email": "ann@example.com", "external_ids": {"erp": ext_id, "shop": "9"}},
        },
    )
    drain_pending()


def test_unlink_removes_only_that_link_and_keeps_the_profile(hub_runtime: Runtime) -> None:
    _known(hub_runtime)
    post(hub_runtime, _deleted("A1"))
    drain_pending()
    with hub_runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Profile)) == 1
        links = set(session.execute(select(ExternalId.source, ExternalId.external_id)).all())
        assert links == {("shop", "9")}


def test_delete_removes_the_profile(hub_runtime: Runtime) -> None:
    _known(hub_runtime)
    post(hub_runtime, _deleted("A1", action="delete"))
    drain_pending()
    with hub_runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Profile)) == 0
        statuses = set(session.scalars(select(Fact.status)))
        assert statuses == {FactStatus.EVALUATED.value}


def test_a_delete_for_an_unknown_id_creates_nobody(hub_runtime: Runtime) -> None:
    post(hub_runtime, _deleted("NOPE"))
    drain_pending()
    with hub_runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Profile)) == 0
        assert session.scalar(select(Fact.status)) == FactStatus.EVALUATED.value


def test_a_source_cannot_unlink_another_sources_id(hub_runtime: Runtime) -> None:
    _known(hub_runtime)
    forged = _deleted("A1", source="shop") | {"profile": {"external_ids": {"erp": "A1"}}}
    post(hub_runtime, forged)
    drain_pending()
    with hub_runtime.db.session() as session:
        links = set(session.execute(select(ExternalId.source, ExternalId.external_id)).all())
        assert links == {("erp", "A1"), ("shop", "9")}
