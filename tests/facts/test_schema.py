"""The fact as callers send it: every error names the fact's index and the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hub.exceptions import InputError
from hub.facts.schema import validate_facts
from hub.profiles.service import check_fields

GOOD = {"type": "order.placed", "source": "shop", "profile": {"email": "ann@example.com"}}


def nest(depth: int) -> dict[str, Any]:
    """``{"a": {"a": ... 1}}``: ``depth`` objects, the outermost included."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


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
        (GOOD | {"type": "order.placed\n"}, "type", "dotted lower-case words"),
        (GOOD | {"source": "shop\n"}, "source", "must be 1 to 64 of a-z"),
        (GOOD | {"source_id": "a\x00b"}, "source_id", "NUL"),
        (
            GOOD | {"profile": {"email": "a@b.nl", "external_ids": {"shop": "1\x00"}}},
            "profile.external_ids",
            "without NUL",
        ),
        (GOOD | {"data": nest(33)}, "data", "nested more than 32 levels deep"),
        (GOOD | {"data": {"l": nest(32)}}, "data", "nested more than 32 levels deep"),
        (
            GOOD | {"occurred_at": "0001-01-01T00:00:00+01:00"},
            "occurred_at",
            "outside the years 1 to 9999 once converted to UTC",
        ),
        (GOOD | {"occurred_at": "9999-12-31T23:59:59-01:00"}, "occurred_at", "outside the years"),
        (
            GOOD | {"profile": {"email": "a@b.nl", "fields": {"first name": "Ann"}}},
            "profile.fields.first name",
            "a field name is a letter or _",
        ),
        (
            GOOD | {"profile": {"email": "a@b.nl", "fields": {"address": {"city": "Delft"}}}},
            "profile.fields.address",
            "a field value is text, a number, a boolean, null or a list of those",
        ),
        (
            GOOD | {"profile": {"email": "a@b.nl", "fields": {"roles": [["editor"]]}}},
            "profile.fields.roles",
            "a field value is text, a number, a boolean, null or a list of those",
        ),
        (
            GOOD | {"profile": {"email": "a@b.nl", "fields": {"status": "vip"}}},
            "profile.fields.status",
            "'status' is a profile column, not a custom field",
        ),
        (
            GOOD | {"profile": {"email": "a@b.nl", "fields": {"bio": "x" * 10_001}}},
            "profile.fields.bio",
            "at most 10000 characters",
        ),
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


def test_data_nested_32_levels_deep_is_kept() -> None:
    facts, errors = validate_facts([GOOD | {"data": nest(32)}])
    assert errors == [] and facts[0].data == nest(32)


def test_occurred_at_at_the_edges_of_the_range_is_kept() -> None:
    early = GOOD | {"occurred_at": "0001-01-01T00:00:00-01:00"}
    late = GOOD | {"occurred_at": "9999-12-31T23:59:59+01:00"}
    facts, errors = validate_facts([early, late])
    assert errors == [] and [f.occurred_at.astimezone(UTC).year for f in facts] == [1, 9999]


FIELDS: list[tuple[Any, Any]] = [
    ("city", "Delft"),
    ("_n2", 41),
    ("score", 2.5),
    ("vip", True),
    ("gone", None),
    ("x" * 64, 1),
    ("x" * 65, 1),
    ("2nd", 1),
    ("first-name", "Ann"),
    ("naïve", 1),
    ("city\n", "Delft"),
    ("", 1),
    ("email", "a@b.nl"),
    ("tags", "a"),
    ("external_ids", "a"),
    ("created_at", "2024-01-01"),
    ("address", {"city": "Delft"}),
    ("roles", ["editor", 2, True, None]),
    ("roles", [["editor"]]),
    ("roles", [{"name": "editor"}]),
    ("roles", ["x"] * 100),
    ("roles", ["x"] * 101),
    ("roles", [float("nan")]),
    ("bio", "a\x00b"),
    ("inf", float("inf")),
    ("bio", "x" * 10_000),
    ("bio", "x" * 10_001),
]


@pytest.mark.parametrize(("name", "value"), FIELDS)
def test_profile_fields_of_a_fact_and_of_the_profile_api_follow_one_rule(
    name: Any, value: Any
) -> None:
    """A fact cannot store a field the profile API (REST and SOAP) would refuse, nor the reverse."""
    try:
        check_fields({name: value})
        api = None
    except InputError as exc:
        api = (exc.field, exc.message)
    fact = GOOD | {"profile": {"email": "a@b.nl", "fields": {name: value}}}
    _, errors = validate_facts([fact])
    via_fact = [(e.field.removeprefix("profile."), e.message) for e in errors] or [None]
    assert via_fact == [api]
