"""API keys: shown once, stored as digests, a revoked or wrong key opens nothing."""

from __future__ import annotations

from sqlalchemy import select, update

from hub.apikeys import KEY_PREFIX, check_api_key, create_api_key, digest
from hub.models import ApiKey
from hub.runtime import Runtime
from hub.times import utcnow


def test_a_created_key_is_checked_to_its_record(hub_runtime: Runtime) -> None:
    with hub_runtime.db.session() as session:
        shop = create_api_key(session, "shop")
        crm = create_api_key(session, "crm")
    assert shop.startswith(KEY_PREFIX) and shop != crm
    with hub_runtime.db.session() as session:
        assert check_api_key(session, shop).name == "shop"
        assert check_api_key(session, crm).name == "crm"


def test_only_the_digest_is_stored(hub_runtime: Runtime) -> None:
    with hub_runtime.db.session() as session:
        key = create_api_key(session, "shop")
    with hub_runtime.db.session() as session:
        row = session.scalars(select(ApiKey)).one()
        stored = [str(getattr(row, c.key)) for c in ApiKey.__table__.columns]
    assert row.key_hash == digest(key) and len(row.key_hash) == 64
    assert not any(key in value or key[12:] in value for value in stored)


def test_a_revoked_key_is_refused(hub_runtime: Runtime) -> None:
    with hub_runtime.db.session() as session:
        revoked = create_api_key(session, "old")
        kept = create_api_key(session, "new")
    with hub_runtime.db.session() as session:
        session.execute(update(ApiKey).where(ApiKey.name == "old").values(revoked_at=utcnow()))
    with hub_runtime.db.session() as session:
        assert check_api_key(session, revoked) is None
        assert check_api_key(session, kept).name == "new"


def test_a_key_that_shares_the_prefix_but_not_the_rest_is_refused(hub_runtime: Runtime) -> None:
    with hub_runtime.db.session() as session:
        key = create_api_key(session, "shop")
    last = "A" if key[-1] != "A" else "B"
    with hub_runtime.db.session() as session:
        assert check_api_key(session, key[:-1] + last) is None  # one character off
        assert check_api_key(session, key[:12]) is None  # the stored prefix alone
        assert check_api_key(session, key + "x") is None
        assert check_api_key(session, "") is None
        assert check_api_key(session, key).name == "shop"
