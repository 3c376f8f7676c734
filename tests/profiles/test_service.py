"""The profile service layer that SOAP and REST share: every write is a fact of its source,
applied at once; bad input changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from hub.exceptions import ConflictError, InputError, NotFoundError
from hub.models import Fact, Profile
from hub.profiles.search import Requirement
from hub.profiles.service import ProfileService
from hub.runtime import Runtime
from tests.conftest import run_jobs


def facts(rt: Runtime) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    with rt.db.session() as session:
        rows = session.execute(
            select(Fact.type, Fact.source, Fact.profile_ref, Fact.data).order_by(Fact.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def count(rt: Runtime, model: Any) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def req(field: str, value: str, op: str = "=", case: bool = False) -> Requirement:
    return Requirement(fieldname=field, value=value, operator=op, casesensitive=case)


def test_create_is_a_fact_and_readable_at_once(svc: ProfileService, hub_runtime: Runtime) -> None:
    made = svc.create("Ann@Example.com", {"city": "Delft", "age": 41}, ["new"])
    assert svc.get(made["id"]) == made
    assert made["email"] == "ann@example.com" and made["fields"] == {"city": "Delft", "age": 41}
    assert made["tags"] == ["new"] and made["status"] == "unconfirmed"
    assert facts(hub_runtime) == [
        (
            "profile.created",
            "soap",
            {"email": "ann@example.com"},
            {"fields": {"city": "Delft", "age": 41}, "changed": ["age", "city"], "tags": ["new"]},
        )
    ]
    with pytest.raises(ConflictError) as taken:
        svc.create("ANN@example.com")
    assert (taken.value.code, taken.value.field) == ("already_exists", "email")
    assert count(hub_runtime, Fact) == 1


def test_evaluating_the_facts_keeps_the_latest_values(
    svc: ProfileService, hub_runtime: Runtime
) -> None:
    pid = svc.create("bo@example.com", {"city": "Ghent"})["id"]
    svc.update_fields(pid, {"city": "Leuven"})
    svc.update_fields(pid, {"city": "Antwerp", "zip": "2000"})
    run_jobs(hub_runtime)  # the worker evaluates all three facts after the writes
    assert svc.get(pid)["fields"] == {"city": "Antwerp", "zip": "2000"}
    with hub_runtime.db.session() as session:
        assert set(session.scalars(select(Fact.status))) == {"evaluated"}
        assert set(session.scalars(select(Fact.profile_id))) == {pid}


def test_upsert_by_key_fields(svc: ProfileService, hub_runtime: Runtime) -> None:
    key = [req("email", "Cem@Example.com"), req("shop_id", "77")]
    created = svc.update_profiles(key, {"city": "Oslo"}, create=True)
    assert created.created
    (profile,) = created.profiles
    assert profile["email"] == "cem@example.com"
    assert profile["fields"] == {"shop_id": "77", "city": "Oslo"}  # key fields are kept
    again = svc.update_profiles(key, {"city": "Bergen"}, create=True)
    assert not again.created and [p["id"] for p in again.profiles] == [profile["id"]]
    assert svc.get(profile["id"])["fields"] == {"shop_id": "77", "city": "Bergen"}
    assert [f[0] for f in facts(hub_runtime)] == ["profile.created", "profile.updated"]


def test_upsert_updates_every_match(svc: ProfileService, hub_runtime: Runtime) -> None:
    for i in range(3):
        svc.create(f"p{i}@example.com", {"team": "red" if i < 2 else "blue"})
    result = svc.update_profiles([req("team", "RED")], {"bonus": True}, create=True)
    assert not result.created and len(result.profiles) == 2
    page = svc.search([req("bonus", "true")])
    assert [p["email"] for p in page.profiles] == ["p0@example.com", "p1@example.com"]
    assert count(hub_runtime, Fact) == 5


def test_upsert_that_cannot_create_names_why(svc: ProfileService, hub_runtime: Runtime) -> None:
    with pytest.raises(InputError) as unknown:  # without create, a new name is a typo
        svc.update_profiles([req("city", "Rome")], {"x": 1}, create=False)
    assert (unknown.value.code, unknown.value.field) == (
        "unknown_field",
        "requirements[0].fieldname",
    )
    with pytest.raises(InputError) as err:
        svc.update_profiles([req("city", "Rome")], {"x": 1}, create=True)
    assert (err.value.code, err.value.field) == ("missing_value", "requirements")
    assert "email" in err.value.message
    assert count(hub_runtime, Fact) == 0 and count(hub_runtime, Profile) == 0


def test_paging(svc: ProfileService) -> None:
    for i in range(7):
        svc.create(f"p{i}@example.com", {"n": i})
    page = svc.search([req("n", "1", ">=")], start=2, length=3)
    assert (page.start, page.length, page.total) == (2, 3, 6)
    assert [p["fields"]["n"] for p in page.profiles] == [3, 4, 5]
    last = svc.search([], start=6, length=3)
    assert (last.length, last.total, [p["fields"]["n"] for p in last.profiles]) == (1, 7, [6])


BAD_FIELDS: list[tuple[dict[str, Any], str, str]] = [
    ({"email": "x@y.zz"}, "reserved_field", "fields.email"),
    ({"tags": []}, "reserved_field", "fields.tags"),
    ({"first name": "Ann"}, "invalid_field_name", "fields.first name"),
    ({"nested": {"a": 1}}, "invalid_value", "fields.nested"),
    ({"list": [[1]]}, "invalid_value", "fields.list"),  # a flat list of scalars is a value
]


def test_bad_fields_change_nothing(svc: ProfileService, hub_runtime: Runtime) -> None:
    pid = svc.create("a@example.com", {"city": "Delft"})["id"]
    got = []
    for fields, _code, _field in BAD_FIELDS:
        with pytest.raises(InputError) as err:
            svc.update_fields(pid, {"ok": 1, **fields})
        got.append((err.value.code, err.value.field))
    assert got == [(code, field) for _, code, field in BAD_FIELDS]
    assert svc.get(pid)["fields"] == {"city": "Delft"}
    assert count(hub_runtime, Fact) == 1


def test_tags_unsubscribe_delete_and_post_fact(svc: ProfileService, hub_runtime: Runtime) -> None:
    pid = svc.create("a@example.com", {}, ["new"])["id"]
    with pytest.raises(InputError) as both:
        svc.change_tags(pid, add=["new"], remove=["new"])
    assert (both.value.code, both.value.field) == ("invalid_value", "remove[0]")
    assert svc.change_tags(pid, add=["buyer", "new"], remove=["gone"])["tags"] == ["new", "buyer"]
    assert svc.change_tags(pid, remove=["new"])["tags"] == ["buyer"]
    assert svc.unsubscribe(pid)["status"] == "unsubscribed"
    fact_id, status = svc.post_fact(pid, "order.placed", {"total": 80}, "order-1")
    assert status == "accepted"
    assert svc.post_fact(pid, "order.placed", {"total": 80}, "order-1") == (fact_id, "duplicate")
    svc.delete(pid)
    with pytest.raises(NotFoundError):
        svc.get(pid)
    with pytest.raises(NotFoundError) as missing:
        svc.update_fields(pid, {"a": 1})
    assert missing.value.field == "id"
    run_jobs(hub_runtime)  # evaluating the earlier facts must not bring the contact back
    assert count(hub_runtime, Profile) == 0
    with hub_runtime.db.session() as session:
        settled = session.execute(select(Fact.status, Fact.error).order_by(Fact.id)).all()
    assert settled[-1] == ("evaluated", None)
    assert {s for s, _ in settled[:-1]} == {"failed"}
    assert settled[0][1] == f"profile {pid} was deleted before this fact was evaluated"
    assert [(f[0], f[3]) for f in facts(hub_runtime)][1:] == [
        ("profile.tagged", {"added": ["buyer"], "removed": []}),
        ("profile.tagged", {"added": [], "removed": ["new"]}),
        ("profile.unsubscribed", {"previous_status": "unconfirmed"}),
        ("order.placed", {"total": 80}),
        ("profile.deleted", {"id": pid}),
    ]


def test_delete_skips_a_fact_a_worker_is_evaluating(
    svc: ProfileService, hub_runtime: Runtime
) -> None:
    from hub.worker.pending import lock_pending

    pid = svc.create("a@example.com", {}, [])["id"]
    held_id, _ = svc.post_fact(pid, "order.placed", {"total": 80}, "held")
    waiting_id, _ = svc.post_fact(pid, "order.placed", {"total": 90}, "waiting")
    # a worker mid-batch holds the first order (SQLite has one writer at a time: there a
    # worker and a delete cannot overlap, and both orders are settled by the delete)
    overlap = not hub_runtime.db.is_sqlite
    worker = hub_runtime.db.sessions()
    try:
        if overlap:
            assert [f.id for f in lock_pending(worker, ids=[held_id])] == [held_id]
        svc.delete(pid)  # returns at once: it does not wait for (or deadlock with) the batch
        with hub_runtime.db.session() as session:
            status = dict(session.execute(select(Fact.id, Fact.status)).all())
        assert status[waiting_id] == "failed"
        assert status[held_id] == ("pending" if overlap else "failed")  # the worker's to settle
    finally:
        worker.rollback()
        worker.close()
