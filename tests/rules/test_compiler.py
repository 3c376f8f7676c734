"""Compiling a rule for durable_rules: what durable matches, and the residual left to Python."""

from __future__ import annotations

from typing import Any

import pytest

from hub.rules.compiler import PathIndex, rule_to_durable, type_pattern_to_regex
from hub.rules.conditions import Compare, Condition, Group, History
from hub.rules.engine import RuleEngine
from hub.rules.model import Rule, RuleSet

TOTAL = Compare("data.total", "gte", 50)


@pytest.mark.parametrize(
    ("pattern", "trigger"),
    [
        ("order.placed", {"type": "order.placed"}),
        ("order.*", {"$mt": {"type": "order[.].*"}}),
        ("order.?", {"$mt": {"type": "order[.]."}}),
        ("*", {"$mt": {"type": ".*"}}),
        ("cart-item.*", {"$mt": {"type": "cart[-]item[.].*"}}),
    ],
)
def test_the_fact_pattern_is_the_trigger(pattern: str, trigger: dict[str, Any]) -> None:
    assert rule_to_durable(pattern, Group("all", ())) == (trigger, None)


@pytest.mark.parametrize(
    ("pattern", "regex"),
    [("order.*", "order[.].*"), ("a-b.?", "a[-]b[.]."), ("plain", "plain")],
)
def test_type_patterns_in_durables_regex_dialect(pattern: str, regex: str) -> None:
    assert type_pattern_to_regex(pattern) == regex


def test_comparisons_are_guarded_by_the_kind_of_their_path() -> None:
    paths = PathIndex()
    cond = Group(
        "all",
        (
            TOTAL,
            Group("all", (Compare("profile.status", "eq", "subscribed"),)),  # flattened
            Compare("data.coupon", "eq", None),
        ),
    )
    expr, residual = rule_to_durable("order.placed", cond, paths)
    assert residual is None
    assert expr == {
        "$and": [
            {"type": "order.placed"},
            {"$and": [{"_t.k0": "n"}, {"$gte": {"data.total": 50}}]},
            {"$and": [{"_t.k1": "s"}, {"profile.status": "subscribed"}]},
            {"_t.k2": "z"},
        ]
    }
    doc = {"type": "order.placed", "data": {"total": "80", "coupon": None}, "profile": {}}
    assert paths.kinds(doc) == {"k0": "s", "k1": "m", "k2": "z"}


def contains_any(n: int) -> Group:
    return Group("any", tuple(Compare("profile.tags", "contains", f"t{i}") for i in range(n)))


IN_2048 = Group(
    "any",
    (Group("all", tuple(Compare(f"data.k{i}", "in", [1, 2]) for i in range(11))), TOTAL),
)


@pytest.mark.parametrize(
    ("cond", "to_python"),
    [
        (Compare("profile.created_at", "within", "1h"), True),  # relative to now
        (Compare("data.shipped_at", "before", "7d"), True),
        (History("order.placed", within=86400), True),
        (Group("any", (TOTAL, History("order.placed"))), True),  # a group holding history
        (Compare("data.note", "contains", "a]b"), True),  # no literal for "]" in durable
        (Compare("data.note", "contains", "a.b"), False),
        (Compare("data.name", "gt", "A b"), True),  # durable misorders texts with a space
        (Compare("data.name", "gt", "Ab"), False),
        (Group("none", (Compare("data.sku", "matches", "AB.*"),)), True),  # no "not matches"
        (Group("none", (Compare("data.sku", "eq", "AB"),)), False),
        (contains_any(8), False),
        (contains_any(9), True),  # too many list-item tests for durable to load
        (IN_2048, True),  # expands to more alternatives than durable should hold
        (Group("all", tuple(Compare(f"data.k{i}", "in", [1, 2]) for i in range(11))), False),
    ],
)
def test_what_durable_cannot_express_is_the_python_residual(
    cond: Condition, to_python: bool
) -> None:
    expr, residual = rule_to_durable("order.placed", Group("all", (TOTAL, cond)))
    if to_python:
        assert residual == Group("all", (cond,))
        assert expr == {
            "$and": [
                {"type": "order.placed"},
                {"$and": [{"_t.k0": "n"}, {"$gte": {"data.total": 50}}]},
            ]
        }
    else:
        assert residual is None
        assert len(expr["$and"]) >= 3


@pytest.mark.parametrize(
    ("note", "fires"), [("x a]b y", True), ("a b", False), (["a]b"], True), (None, False)]
)
def test_a_rule_with_a_residual_fires_when_both_parts_hold(note: Any, fires: bool) -> None:
    cond = Group("all", (TOTAL, Compare("data.note", "contains", "a]b")))
    engine = RuleEngine(RuleSet((Rule("r", "f.yaml", 1, "order.*", cond, ()),), "v"))
    docs = [
        {"type": "order.placed", "data": {"total": total, "note": note}, "profile": {}, "fact": {}}
        for total in (80, 20)
    ]
    assert [[r.name for r in rules] for rules in engine.match(docs)] == [
        ["r"] if fires else [],
        [],
    ]
