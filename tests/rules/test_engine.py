"""Property: for random facts and random conditions, the rules durable_rules fires are exactly
the rules a direct Python evaluation of the same conditions selects."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.rules.conditions import Compare, Group
from hub.rules.engine import RuleEngine, reference_match
from hub.rules.model import Rule, RuleSet

# "data" and "profile.fields" enclose other paths: durable gets only the compared paths
PATHS = [
    "data.a",
    "data.b",
    "data",
    "profile.fields.x",
    "profile.fields",
    "profile.tags",
    "fact.source",
]
TEXTS = st.text(alphabet="abcAB. -", max_size=4)
WORDS = st.text(alphabet="abcAB. -", min_size=1, max_size=4)  # ordering and contains
NUMBERS = st.one_of(st.integers(-5, 5), st.sampled_from([0.5, -1.5, 2.0, 1e3]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXTS)
VALUES = st.one_of(SCALARS, st.lists(TEXTS, max_size=3))


def compare() -> st.SearchStrategy[Compare]:
    path = st.sampled_from(PATHS)
    return st.one_of(
        st.builds(Compare, path, st.sampled_from(["eq", "ne"]), SCALARS),
        st.builds(
            Compare, path, st.sampled_from(["gt", "gte", "lt", "lte"]), st.one_of(NUMBERS, WORDS)
        ),
        st.builds(
            Compare,
            path,
            st.sampled_from(["in", "not_in"]),
            st.lists(SCALARS, min_size=1, max_size=3),
        ),
        st.builds(Compare, path, st.sampled_from(["exists", "missing"]), st.just(True)),
        st.builds(Compare, path, st.just("contains"), WORDS),
        st.builds(
            Compare, path, st.just("matches"), st.sampled_from(["a.*", "[ab]+", ".*B", "a[.]b"])
        ),
    )


conditions = st.recursive(
    compare(),
    lambda inner: st.builds(
        Group,
        st.sampled_from(["all", "any", "none"]),
        st.lists(inner, min_size=1, max_size=3).map(tuple),
    ),
    max_leaves=6,
)


def document() -> st.SearchStrategy[dict[str, Any]]:
    maybe = st.one_of(st.just(None), VALUES)  # None here means "missing"

    def build(fact_type: str, a: Any, b: Any, x: Any, tags: Any, source: Any) -> dict[str, Any]:
        data = {k: v for k, v in (("a", a), ("b", b)) if v is not None}
        fields = {"x": x} if x is not None else {}
        profile: dict[str, Any] = {"fields": fields}
        if tags is not None:
            profile["tags"] = tags
        fact = {"type": fact_type} | ({"source": source} if source is not None else {})
        return {"type": fact_type, "data": data, "profile": profile, "fact": fact}

    return st.builds(
        build,
        st.sampled_from(["order.placed", "order.updated", "form.submitted"]),
        maybe,
        maybe,
        maybe,
        st.one_of(st.none(), st.lists(TEXTS, max_size=3)),
        st.one_of(st.none(), TEXTS),
    )


def ruleset(conds: list[Any], patterns: list[str]) -> RuleSet:
    rules = tuple(
        Rule(f"r{i}", "mem.yaml", i + 1, pattern, Group("all", (cond,)), ())
        for i, (cond, pattern) in enumerate(zip(conds, patterns, strict=False))
    )
    return RuleSet(rules, "test")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    conds=st.lists(conditions, min_size=1, max_size=6),
    patterns=st.lists(
        st.sampled_from(["order.placed", "order.*", "*", "form.submitted"]), min_size=6, max_size=6
    ),
    docs=st.lists(document(), min_size=1, max_size=6),
)
def test_engine_fires_exactly_the_rules_python_selects(
    conds: list[Any], patterns: list[str], docs: list[dict[str, Any]]
) -> None:
    rs = ruleset(conds, patterns)
    engine = RuleEngine(rs)
    for doc, fired in zip(docs, engine.match(docs), strict=True):
        expected = [r.name for r in reference_match(rs, doc)]
        assert [r.name for r in fired] == expected, (doc, engine.definitions)


@settings(max_examples=100, deadline=None)
@given(cond=conditions, doc=document())
def test_none_is_the_negation_of_any(cond: Any, doc: dict[str, Any]) -> None:
    rs = RuleSet(
        (
            Rule("yes", "m", 1, "*", Group("all", (Group("any", (cond,)),)), ()),
            Rule("no", "m", 2, "*", Group("all", (Group("none", (cond,)),)), ()),
        ),
        "t",
    )
    (fired,) = RuleEngine(rs).match([doc])
    assert len(fired) == 1  # exactly one of a condition and its negation holds


def test_durable_gets_only_the_compared_paths_and_the_document_is_left_alone() -> None:
    rules = RuleSet(
        rules=(
            Rule(
                name="r",
                file="f.yaml",
                line=1,
                fact_pattern="order.*",
                condition=Group(
                    "all",
                    (
                        Compare("data.total", "gte", 50),
                        Compare("data", "exists", True),
                        Compare("profile.status", "eq", "subscribed"),
                    ),
                ),
                actions=(),
            ),
        ),
        version="v",
    )
    engine = RuleEngine(rules)
    doc = {
        "type": "order.placed",
        "fact": {"id": 1, "source": "shop"},
        "data": {"total": 80, "lines": [1, 2]},
        "profile": {"status": "subscribed", "fields": {"name": "Ann"}, "tags": ["x"]},
    }
    before = repr(doc)
    message = engine.message(doc, 0)
    assert message["data"] == {"total": 80, "lines": [1, 2]}  # "data" is compared whole
    assert message["profile"] == {"status": "subscribed"}
    assert "fact" not in message
    assert repr(doc) == before
    assert [r.name for r in engine.match([doc])[0]] == ["r"]
