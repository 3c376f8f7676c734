"""The fact as callers send it: every error names the fact's index and the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hub.facts.schema import validate_facts

GOOD = {"type": "order.placed", "source": "shop", "profile": {"email": "ann@example.com"}}


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        ("order.placed", "", "a fact must be a JSON object"),
        ([GOOD], "", "a fact must be a JSON object"),
        (GOOD | {"source": "Shop!"}, "source", "must be 1 to 64 of a-z"),
        (GOOD | {"source_id": ""}, "source_id", "at least 1 character"),
        (
            GOOD | {"profile": {"email": "a@b.nl", "colour": "red"}},
            "profile.colour",
            "unknown field",
        ),
        (
            GOOD | {"profile": {"email": "a@b.nl", "status": "gone"}},
            "profile.status",
            "'subscribed'",
        ),
        (
            GOOD | {"profile": {"external_ids": {"Magento 2": "1"}}},
            "profile.external_ids",
            "source name 'Magento 2' must match",
        ),
        (GOOD | {"profile": {"external_ids": {"magento": ""}}}, "profile.external_ids", "1 to 255"),
        (GOOD | {"data": {"a": {"b": [0, float("-inf")]}}}, "data", "data.a.b[1] is -inf"),
        (GOOD | {"data": {"n": float("nan")}}, "data", "data.n is nan"),
    ],
)
def test_an_error_names_index_and_field(item: Any, field: str, message: str) -> None:
    facts, errors = validate_facts([GOOD, item])
    assert len(facts) == 1
    assert [(e.index, e.field) for e in errors] == [(1, field)]
    assert message in errors[0].message, errors[0].message


def test_every_bad_fact_is_reported_not_just_the_first() -> None:
    items = [GOOD | {"type": "Bad"}, GOOD, {"profile": {}, "colour": 1}]
    facts, errors = validate_facts(items)
    assert len(facts) == 1
    assert {(e.index, e.field) for e in errors} == {
        (0, "type"),
        (2, "type"),
        (2, "profile"),
        (2, "colour"),
    }


@pytest.mark.parametrize(
    ("email", "stored"),
    [("Ann@Example.COM", "ann@example.com"), ("  bo@example.com\n", "bo@example.com")],
)
def test_email_is_lower_cased_and_stripped(email: str, stored: str) -> None:
    (fact,), errors = validate_facts([GOOD | {"profile": {"email": email}}])
    assert errors == [] and fact.profile.email == stored


@pytest.mark.parametrize(("sent", "kept"), [(42, "42"), ("42", "42"), ("a-1", "a-1")])
def test_a_numeric_source_id_is_kept_as_text(sent: Any, kept: str) -> None:
    (fact,), _ = validate_facts([GOOD | {"source_id": sent}])
    assert fact.source_id == kept


def test_a_boolean_source_id_is_refused() -> None:
    _, errors = validate_facts([GOOD | {"source_id": True}])
    assert [(e.index, e.field) for e in errors] == [(0, "source_id")]


@pytest.mark.parametrize(
    ("sent", "instant"),
    [
        ("2024-06-01T10:00:00", datetime(2024, 6, 1, 10, tzinfo=UTC)),  # naive: UTC
        ("2024-06-01T12:00:00+02:00", datetime(2024, 6, 1, 10, tzinfo=UTC)),
        ("2024-06-01T10:00:00Z", datetime(2024, 6, 1, 10, tzinfo=UTC)),
    ],
)
def test_occurred_at_is_always_aware(sent: str, instant: datetime) -> None:
    (fact,), _ = validate_facts([GOOD | {"occurred_at": sent}])
    assert fact.occurred_at.tzinfo is not None and fact.occurred_at == instant


def test_defaults_of_a_minimal_fact() -> None:
    (fact,), _ = validate_facts(
        [{"type": "form.submitted", "profile": {"external_ids": {"x": "1"}}}]
    )
    assert (fact.source, fact.source_id, fact.occurred_at, fact.data) == ("api", None, None, {})
