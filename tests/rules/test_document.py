"""The document rules see, the same wherever it is built, and what templates see of it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from hub.models import Fact, Profile
from hub.rules.document import document, fact_document, history_document, template_context
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from tests.rules.test_language import post

FACT = {
    "id": 3,
    "type": "order.placed",
    "source": "shop",
    "source_id": "o-1",
    "occurred_at": "2026-03-01T12:00:00+00:00",
    "profile": {"email": "ann@example.com"},  # the reference: not part of the document
    "data": {"total": 80},
}
PROFILE = {"id": 9, "email": "ann@example.com", "status": "subscribed", "fields": {}, "tags": []}


def test_document_shape() -> None:
    assert document(FACT, PROFILE) == {
        "type": "order.placed",
        "fact": {
            "id": 3,
            "type": "order.placed",
            "source": "shop",
            "source_id": "o-1",
            "occurred_at": "2026-03-01T12:00:00+00:00",
        },
        "data": {"total": 80},
        "profile": PROFILE,
    }


def test_a_document_without_profile_or_data_has_empty_ones() -> None:
    doc = document({"type": "profile.vip", "source": "hub", "data": None}, None)
    assert doc == {"type": "profile.vip", "fact": {"type": "profile.vip", "source": "hub"}} | {
        "data": {},
        "profile": {},
    }


def test_fact_document_of_a_stored_fact_and_its_profile(hub_runtime: Runtime) -> None:
    (fid,) = post(
        hub_runtime,
        {
            "type": "order.placed",
            "source": "shop",
            "source_id": "o-7",
            "occurred_at": "2026-03-01T12:00:00Z",
            "profile": {"email": "ann@example.com", "fields": {"first_name": "Ann"}},
            "data": {"total": 80},
        },
    )
    drain_pending()
    with hub_runtime.db.session() as s:
        fact = s.get(Fact, fid)
        profile = s.scalar(select(Profile))
        doc = fact_document(fact, profile)
        alone = fact_document(fact, None)
    assert doc["type"] == "order.placed" and doc["data"] == {"total": 80}
    assert doc["fact"] == {
        "id": fid,
        "type": "order.placed",
        "source": "shop",
        "source_id": "o-7",
        "occurred_at": "2026-03-01T12:00:00+00:00",
    }
    assert doc["profile"]["email"] == "ann@example.com"
    assert doc["profile"]["fields"] == {"first_name": "Ann"}
    assert doc["profile"]["id"] == fact.profile_id
    assert alone["profile"] == {} and alone["fact"] == doc["fact"]


def test_history_document_has_no_profile_and_its_time_parsed() -> None:
    at = datetime(2026, 2, 1, 8, 30, tzinfo=UTC)
    data: dict[str, Any] = {"total": 120}
    doc = history_document(5, "order.placed", "shop", None, at, data)
    assert doc == {
        "type": "order.placed",
        "fact": {
            "id": 5,
            "type": "order.placed",
            "source": "shop",
            "source_id": None,
            "occurred_at": "2026-02-01T08:30:00+00:00",
        },
        "data": {"total": 120},
        "_at": at,
    }
    doc["data"]["total"] = 0
    assert data == {"total": 120}  # the stored row's data is not changed through the document
    assert history_document(6, "mail.clicked", "hub", "x", at, None)["data"] == {}


def test_template_context_is_the_fact_with_its_data_and_the_profile() -> None:
    assert template_context(document(FACT, PROFILE)) == {
        "fact": {
            "id": 3,
            "type": "order.placed",
            "source": "shop",
            "source_id": "o-1",
            "occurred_at": "2026-03-01T12:00:00+00:00",
            "data": {"total": 80},
        },
        "profile": PROFILE,
    }
