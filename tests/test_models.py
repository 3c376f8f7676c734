"""The tables: timestamps come back aware UTC on every database; rows read as rules see them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from hub.models import ExternalId, Fact, Profile, fact_dict, profile_dict
from hub.runtime import Runtime

AMSTERDAM_SUMMER = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("written", "instant"),
    [
        (datetime(2024, 6, 1, 1, 30, tzinfo=AMSTERDAM_SUMMER), datetime(2024, 5, 31, 23, 30)),
        (datetime(2024, 6, 1, 1, 30, tzinfo=UTC), datetime(2024, 6, 1, 1, 30)),
        (datetime(2024, 6, 1, 1, 30), datetime(2024, 6, 1, 1, 30)),  # naive is taken as UTC
        (
            datetime(2024, 6, 1, 1, 30, 15, 123456, tzinfo=UTC),
            datetime(2024, 6, 1, 1, 30, 15, 123456),
        ),
    ],
)
def test_timestamps_come_back_as_the_same_instant_in_aware_utc(
    hub_runtime: Runtime, written: datetime, instant: datetime
) -> None:
    with hub_runtime.db.session() as session:
        fact = Fact(type="order.placed", source="shop", occurred_at=written)
        session.add(fact)
        session.flush()
        fact_id = fact.id
    with hub_runtime.db.session() as session:
        back = session.get(Fact, fact_id)
        assert back.occurred_at.utcoffset() == timedelta(0)
        assert back.occurred_at == instant.replace(tzinfo=UTC)
        assert back.received_at.utcoffset() == timedelta(0)  # the default, utcnow


def test_comparing_timestamps_in_queries_is_by_instant(hub_runtime: Runtime) -> None:
    with hub_runtime.db.session() as session:
        for hour in (10, 11, 12):
            session.add(
                Fact(
                    type="t.x",
                    source="shop",
                    source_id=str(hour),
                    occurred_at=datetime(2024, 6, 1, hour, tzinfo=UTC),
                )
            )
    since = datetime(2024, 6, 1, 13, tzinfo=AMSTERDAM_SUMMER)  # 11:00 UTC
    with hub_runtime.db.session() as session:
        later = session.scalars(
            select(Fact.source_id).where(Fact.occurred_at >= since).order_by(Fact.id)
        ).all()
    assert later == ["11", "12"]


def _profile(hub_runtime: Runtime) -> int:
    with hub_runtime.db.session() as session:
        profile = Profile(email="ann@example.com", fields={"name": "Ann", "n": 2**70}, tags=["vip"])
        profile.external_ids = [ExternalId(source="magento", external_id="42")]
        session.add(profile)
        session.flush()
        return profile.id


def test_profile_dict_is_the_same_from_an_object_or_a_plain_row(hub_runtime: Runtime) -> None:
    profile_id = _profile(hub_runtime)
    with hub_runtime.db.session() as session:
        from_object = session.get(Profile, profile_id).as_dict()
        row = session.execute(
            select(
                Profile.id,
                Profile.email,
                Profile.status,
                Profile.fields,
                Profile.tags,
                Profile.created_at,
                Profile.updated_at,
            ).where(Profile.id == profile_id)
        ).one()
    assert profile_dict(row, {"magento": "42"}) == from_object
    assert from_object["email"] == "ann@example.com" and from_object["status"] == "unconfirmed"
    assert from_object["fields"] == {"name": "Ann", "n": 2**70}
    assert from_object["tags"] == ["vip"] and from_object["external_ids"] == {"magento": "42"}
    created = datetime.fromisoformat(from_object["created_at"])
    assert created.utcoffset() == timedelta(0)


def test_changing_a_profile_dict_leaves_the_profile_alone(hub_runtime: Runtime) -> None:
    profile_id = _profile(hub_runtime)
    with hub_runtime.db.session() as session:
        profile = session.get(Profile, profile_id)
        seen = profile.as_dict()
        seen["fields"]["name"] = "Eve"
        seen["tags"].append("x")
        seen["external_ids"]["drupal"] = "7"
        assert profile.fields == {"name": "Ann", "n": 2**70} and profile.tags == ["vip"]
        assert profile.as_dict()["external_ids"] == {"magento": "42"}


def test_fact_dict_is_the_same_from_an_object_or_a_plain_row(hub_runtime: Runtime) -> None:
    with hub_runtime.db.session() as session:
        fact = Fact(
            type="order.placed",
            source="shop",
            source_id="o-1",
            occurred_at=datetime(2024, 6, 1, 1, 30, tzinfo=AMSTERDAM_SUMMER),
            profile_ref={"email": "ann@example.com"},
            data={"total": 80, "é": [1]},
        )
        session.add(fact)
        session.flush()
        fact_id = fact.id
    with hub_runtime.db.session() as session:
        from_object = session.get(Fact, fact_id).as_dict()
        row = session.execute(
            select(
                Fact.id,
                Fact.type,
                Fact.source,
                Fact.source_id,
                Fact.occurred_at,
                Fact.profile_ref,
                Fact.data,
            ).where(Fact.id == fact_id)
        ).one()
    assert (
        fact_dict(row)
        == from_object
        == {
            "id": fact_id,
            "type": "order.placed",
            "source": "shop",
            "source_id": "o-1",
            "occurred_at": "2024-05-31T23:30:00+00:00",
            "profile": {"email": "ann@example.com"},
            "data": {"total": 80, "é": [1]},
        }
    )
