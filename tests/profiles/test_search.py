"""Searching profiles by requirements: every operator, unknown fields named, fields written
elsewhere found at once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.exceptions import InputError
from hub.models import Profile
from hub.profiles.search import Requirement
from hub.profiles.service import ProfileService
from hub.runtime import Runtime
from tests.profiles.test_service import req

OPERATOR_CASES: list[tuple[Requirement, list[str]]] = [
    (req("city", "Delft", "=", True), ["a"]),
    (req("city", "delft"), ["a", "b"]),
    (req("city", "delft", "!="), ["c", "d"]),  # d has no city: compares as ""
    (
        req(
            "city",
            "",
            "=",
        ),
        ["d"],
    ),
    (req("age", "30", ">"), ["b", "c"]),
    (req("age", "30", ">="), ["a", "b", "c"]),
    (req("age", "41", "<"), ["a"]),
    (req("age", "41", "<="), ["a", "b"]),
    (req("age", "5", ">"), ["a", "b", "c"]),  # numeric, not text, comparison
    (req("code", "B", "<"), ["a", "c", "d"]),  # as text when the value is no number
    (req("city", "DEL%", "LIKE"), ["a", "b"]),
    (req("city", "Del%", "LIKE", True), ["a"]),
    (req("city", "d_lft", "LIKE", True), ["b"]),
    (req("city", "%LFT", "NOT LIKE"), ["c", "d"]),
    (req("vip", "true"), ["b"]),
    (req("tags", "buyer"), ["a", "c"]),
    (req("tags", "buyer", "!="), ["b", "d"]),
    (req("status", "unsubscribed"), ["d"]),
    (req("email", "C@EXAMPLE.COM"), ["c"]),
    (req("created_at", "2000-01-01T00:00:00+00:00", ">"), ["a", "b", "c", "d"]),
]


def test_search_operators(svc: ProfileService) -> None:
    svc.create("a@example.com", {"city": "Delft", "age": 30, "code": "A"}, ["buyer"])
    svc.create("b@example.com", {"city": "delft", "age": "41", "vip": True, "code": "B"})
    svc.create("c@example.com", {"city": "Utrecht", "age": 65.5}, ["buyer"])
    svc.create("d@example.com", {"age": "unknown"}, status="unsubscribed")
    found = {}
    for requirement, _ in OPERATOR_CASES:
        page = svc.search([requirement])
        found[requirement] = [p["email"][0] for p in page.profiles]
        assert page.total == len(page.profiles)
    assert found == {r: expected for r, expected in OPERATOR_CASES}


BAD_SEARCHES: list[tuple[list[Requirement], int, int | None, str, str]] = [
    ([req("colour", "red")], 0, None, "unknown_field", "requirements[0].fieldname"),
    (
        [req("city", "x"), req("Email", "x")],
        0,
        None,
        "unknown_field",
        "requirements[1].fieldname",
    ),
    ([req("", "x")], 0, None, "missing_value", "requirements[0].fieldname"),
    ([req("city", "x", "~")], 0, None, "invalid_operator", "requirements[0].operator"),
    ([req("tags", "x", ">")], 0, None, "invalid_operator", "requirements[0].operator"),
    ([req("id", "seven")], 0, None, "invalid_value", "requirements[0].value"),
    ([req("created_at", "yesterday")], 0, None, "invalid_value", "requirements[0].value"),
    ([], -1, None, "invalid_value", "start"),
    ([], 10**20, None, "invalid_value", "start"),  # past 64 bits: an overflow, not a page
    ([], 2**63 - 1, None, "invalid_value", "start"),
    ([req("city", "a\x00b")], 0, None, "invalid_value", "requirements[0].value"),
    ([req("city", "1e400", ">")], 0, None, "invalid_value", "requirements[0].value"),
    (
        [req("created_at", "0001-01-01T00:00:00+01:00", ">")],
        0,
        None,
        "invalid_value",
        "requirements[0].value",
    ),
    ([], 0, 0, "invalid_value", "length"),
    ([], 0, 5000, "invalid_value", "length"),
]


def test_bad_search_names_the_field(svc: ProfileService) -> None:
    svc.create("a@example.com", {"city": "Delft"})
    got = []
    for requirements, start, length, _code, _field in BAD_SEARCHES:
        with pytest.raises(InputError) as err:
            svc.search(requirements, start, length)
        got.append((err.value.code, err.value.field))
    assert got == [(code, field) for *_, code, field in BAD_SEARCHES]


def test_field_written_elsewhere_is_known_at_once(
    svc: ProfileService, hub_runtime: Runtime
) -> None:
    svc.create("a@example.com", {"city": "Delft"})
    assert ("city", "custom") in svc.known_fields()
    # a rule or connector writes a new field straight into the table
    with hub_runtime.db.session() as session:
        profile = session.scalar(select(Profile))
        profile.fields = {"city": "Delft", "loyalty": "gold"}
    other = ProfileService(hub_runtime.db, hub_runtime.settings, hub_runtime.redis, "api")
    other.catalog._read_at -= 60  # noqa: SLF001 - as if the last re-read were a minute ago
    assert [p["email"] for p in other.search([req("loyalty", "gold")]).profiles] == [
        "a@example.com"
    ]


def test_the_last_possible_page_is_empty_not_an_error(svc: ProfileService) -> None:
    svc.create("a@example.com")
    page = svc.search([], start=2**63 - 1 - 1000, length=1000)
    assert (page.length, page.total) == (0, 1)


ACCENTED = [("e1", "École"), ("e2", "école"), ("e3", "ÉCOLE"), ("e4", "Ecole"), ("e5", "Straße")]


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        (req("city", "école"), ["e1", "e2", "e3"]),
        (req("city", "ÉCOLE", "!="), ["e4", "e5"]),
        (req("city", "éc%", "LIKE"), ["e1", "e2", "e3"]),
        (req("city", "%COLE", "NOT LIKE"), ["e5"]),
        (req("city", "STRASSE"), []),  # lower case, not case folding: ß is no "ss"
        (req("city", "STRAßE"), ["e5"]),
        (req("city", "École", "=", True), ["e1"]),
        (req("city", "É%", "LIKE", True), ["e1", "e3"]),
    ],
)
def test_case_is_ignored_for_every_letter_not_only_ascii(
    svc: ProfileService, requirement: Requirement, expected: list[str]
) -> None:
    """SQLite's own lower() knows only A-Z: 'École' and 'école' were different there."""
    for key, city in ACCENTED:
        svc.create(f"{key}@example.com", {"city": city})
    found = [p["email"][:2] for p in svc.search([requirement]).profiles]
    assert found == expected


@pytest.mark.parametrize("op", ["=", "LIKE"])
def test_an_email_compares_without_case_even_when_asked_to_with_case(
    svc: ProfileService, op: str
) -> None:
    """Emails are stored lower-cased: a case-sensitive 'Ann@Example.com' would find no one."""
    svc.create("Ann@Example.com")
    page = svc.search([req("email", "Ann@Example.com", op, True)])
    assert [p["email"] for p in page.profiles] == ["ann@example.com"]
