"""Finding and creating the profiles facts are about: external ids win over emails, unknown ids
are attached, fields merged, and workers creating the same contact at once agree."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import ExternalId, Profile
from hub.profiles.resolve import resolve_profile_rows, resolve_profiles
from hub.runtime import Runtime

Resolver = Callable[[Session, list[dict[str, Any]]], list[int]]


def by_objects(session: Session, refs: list[dict[str, Any]]) -> list[int]:
    return [p.id for p in resolve_profiles(session, refs)]


def by_rows(session: Session, refs: list[dict[str, Any]]) -> list[int]:
    return [r.id for r in resolve_profile_rows(session, refs, fields_before={})]


RESOLVERS = pytest.mark.parametrize("resolve", [by_objects, by_rows], ids=["objects", "rows"])


def run(rt: Runtime, resolve: Resolver, *refs: dict[str, Any]) -> list[int]:
    with rt.db.session() as session:
        return resolve(session, list(refs))


def stored(rt: Runtime) -> dict[int, tuple[Any, ...]]:
    """Every profile: (email, status, fields, external ids)."""
    with rt.db.session() as s:
        ext: dict[int, dict[str, str]] = {}
        for pid, source, ext_id in s.execute(
            select(ExternalId.profile_id, ExternalId.source, ExternalId.external_id)
        ):
            ext.setdefault(pid, {})[source] = ext_id
        return {
            p.id: (p.email, p.status, p.fields, ext.get(p.id, {}))
            for p in s.scalars(select(Profile).order_by(Profile.id))
        }


@RESOLVERS
def test_a_new_email_is_a_new_profile_once(hub_runtime: Runtime, resolve: Resolver) -> None:
    ann = {"email": "ann@example.com", "status": "unsubscribed", "fields": {"city": "Delft"}}
    a, b, c = run(hub_runtime, resolve, ann, {"email": "bo@example.com"}, ann)
    assert a == c != b
    assert stored(hub_runtime) == {
        # consent is not the resolver's: the evaluation applies it (hub.profiles.consent)
        a: ("ann@example.com", "unconfirmed", {"city": "Delft"}, {}),
        b: ("bo@example.com", "unconfirmed", {}, {}),
    }
    assert run(hub_runtime, resolve, {"email": "ann@example.com"}) == [a]


@RESOLVERS
def test_a_known_external_id_wins_over_the_email(hub_runtime: Runtime, resolve: Resolver) -> None:
    shop, ann = run(
        hub_runtime,
        resolve,
        {"email": "shop@example.com", "external_ids": {"magento": "42"}},
        {"email": "ann@example.com"},
    )
    (found,) = run(
        hub_runtime, resolve, {"email": "ann@example.com", "external_ids": {"magento": "42"}}
    )
    assert found == shop
    assert stored(hub_runtime)[ann][3] == {}  # the email's profile got no id of another


@RESOLVERS
def test_unknown_external_ids_are_attached(hub_runtime: Runtime, resolve: Resolver) -> None:
    (ann,) = run(hub_runtime, resolve, {"email": "ann@example.com"})
    run(hub_runtime, resolve, {"email": "ann@example.com", "external_ids": {"magento": "42"}})
    (again,) = run(
        hub_runtime,
        resolve,
        {"email": "new@example.com", "external_ids": {"magento": "42", "exact": "E7"}},
    )
    assert again == ann
    assert stored(hub_runtime) == {
        ann: ("ann@example.com", "unconfirmed", {}, {"magento": "42", "exact": "E7"})
    }


@RESOLVERS
def test_only_external_ids_make_a_profile_without_email(
    hub_runtime: Runtime, resolve: Resolver
) -> None:
    ref = {"external_ids": {"drupal": "u9"}, "status": "unsubscribed"}
    (first,) = run(hub_runtime, resolve, ref)
    assert run(hub_runtime, resolve, ref) == [first]
    assert stored(hub_runtime) == {first: (None, "unconfirmed", {}, {"drupal": "u9"})}


@RESOLVERS
def test_a_reference_with_neither_email_nor_ids_is_refused(
    hub_runtime: Runtime, resolve: Resolver
) -> None:
    with pytest.raises(ValueError, match="has neither email nor external ids"):
        run(hub_runtime, resolve, {"email": "ann@example.com"}, {"fields": {"a": 1}})
    assert stored(hub_runtime) == {}


@RESOLVERS
def test_fields_a_source_sends_are_merged(hub_runtime: Runtime, resolve: Resolver) -> None:
    (ann,) = run(
        hub_runtime, resolve, {"email": "ann@example.com", "fields": {"city": "Delft", "zip": "1"}}
    )
    run(hub_runtime, resolve, {"email": "ann@example.com", "fields": {"city": "Leiden", "age": 4}})
    assert stored(hub_runtime)[ann][2] == {"city": "Leiden", "zip": "1", "age": 4}


def test_rows_tell_the_fields_before_the_merge_of_profiles_that_existed(
    hub_runtime: Runtime,
) -> None:
    (ann,) = run(hub_runtime, by_rows, {"email": "ann@example.com", "fields": {"city": "Delft"}})
    before: dict[int, dict[str, Any]] = {}
    with hub_runtime.db.session() as s:
        rows = resolve_profile_rows(
            s,
            [
                {"email": "ann@example.com", "fields": {"city": "Leiden"}},
                {
                    "email": "bo@example.com",
                    "fields": {"city": "Ghent"},
                    "external_ids": {"x": "1"},
                },
            ],
            fields_before=before,
        )
    assert before == {ann: {"city": "Delft"}}  # bo is new: nothing before
    assert [(r.email, r.fields, r.external_ids) for r in rows] == [
        ("ann@example.com", {"city": "Leiden"}, {}),
        ("bo@example.com", {"city": "Ghent"}, {"x": "1"}),
    ]
    assert rows[0].as_dict()["fields"] == {"city": "Leiden"}
    assert rows[0].updated_at is not None and rows[0].updated_at > rows[0].created_at


@RESOLVERS
def test_workers_creating_the_same_contacts_at_once_agree(
    hub_runtime: Runtime, resolve: Resolver
) -> None:
    refs = [{"email": f"p{i}@example.com", "external_ids": {"shop": f"s{i}"}} for i in range(5)]
    start = threading.Barrier(4)
    got: list[list[int]] = []
    errors: list[BaseException] = []

    def worker(order: list[dict[str, Any]]) -> None:
        try:
            start.wait()
            with hub_runtime.db.session() as session:
                ids = resolve(session, order)
            got.append([ids[order.index(r)] for r in refs])
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(refs,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(got) == 4 and all(ids == got[0] for ids in got)
    with hub_runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Profile)) == 5
        assert s.scalar(select(func.count()).select_from(ExternalId)) == 5
