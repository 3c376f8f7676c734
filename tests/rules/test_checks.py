"""Checks across a whole rule set: fact types that look like typos, and emit cycles."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.rules.checks import emit_cycles, known_fact_types, unknown_fact_types
from hub.rules.conditions import Group
from hub.rules.model import ActionCall, Rule
from tests.rules.test_reader import only, problems


def test_a_fact_type_that_is_a_typo_gets_a_did_you_mean(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: x
            when:
              fact: order.plcaed
            then: [{update_profile: {add_tags: [a]}}]
        """,
    )
    assert str(p).endswith(
        "bad.yaml:4:7: unknown fact type 'order.plcaed'; did you mean 'order.placed'? "
        "(declare a new type under 'fact_types:')"
    )


def test_a_declared_fact_type_is_accepted(tmp_path: Path) -> None:
    assert (
        problems(
            tmp_path,
            """
        fact_types: [order.paid]
        rules:
          - name: x
            when: {fact: order.paid}
            then: [{update_profile: {add_tags: [a]}}]
        """,
        )
        == []
    )


def test_emit_cycle(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: ping
            when: {fact: game.ping}
            then: [{emit: {type: game.pong}}]
          - name: pong
            when: {fact: game.pong}
            then: [{emit: {type: game.ping}}]
        """,
    )
    assert p.line == 2
    assert p.message.startswith("emit cycle: ping -> pong -> ping")


def rule(name: str, pattern: str, *emits: str, line: int = 1) -> Rule:
    actions = tuple(ActionCall("emit", {"type": t}, line) for t in emits)
    return Rule(name, "set.yaml", line, pattern, Group("all", ()), actions)


@pytest.mark.parametrize(
    ("fact_type", "declared", "suggestion"),
    [
        ("order.plcaed", set(), "order.placed"),
        ("profile.vipp", set(), "profile.vip"),  # emitted by a rule of the set
        ("invoice.payed", set(), "invoice.paid"),
        ("order.placed", set(), None),
        ("order.*", set(), None),  # a glob is never a typo
        ("order.plac?d", set(), None),
        ("webinar.attended", set(), None),  # far from every known type: a new source's type
        ("order.plcaed", {"order.plcaed"}, None),  # declared under fact_types
    ],
)
def test_unknown_fact_types_suggest_the_close_known_type(
    fact_type: str, declared: set[str], suggestion: str | None
) -> None:
    rules = [rule("vip", "order.placed", "profile.vip")]
    found = unknown_fact_types([("set.yaml", fact_type, 4, 7)], declared, rules)
    if suggestion is None:
        assert found == []
    else:
        (p,) = found
        assert str(p).startswith(
            f"set.yaml:4:7: unknown fact type {fact_type!r}; did you mean {suggestion!r}?"
        )


def test_known_fact_types_are_built_in_declared_and_emitted() -> None:
    known = known_fact_types({"order.paid"}, [rule("r", "order.placed", "loyalty.upgraded")])
    assert {"order.placed", "profile.updated", "order.paid", "loyalty.upgraded"} <= known
    assert "loyalty.downgraded" not in known


@pytest.mark.parametrize(
    ("rules", "cycles"),
    [
        ([rule("a", "x.one", "x.two"), rule("b", "x.two")], []),
        ([rule("a", "x.one", "x.two"), rule("b", "x.two", "x.three")], []),
        ([rule("loop", "x.*", "x.again")], ["loop -> loop"]),
        (
            [
                rule("a", "x.one", "x.two", line=1),
                rule("b", "x.two", "x.three", line=5),
                rule("c", "x.three", "x.one", line=9),
            ],
            ["a -> b -> c -> a"],  # one cycle, reported once, at its first rule
        ),
        (
            [rule("a", "x.one", "x.two"), rule("b", "x.two", "x.one"), rule("c", "y.*", "y.z")],
            ["a -> b -> a", "c -> c"],
        ),
    ],
)
def test_emit_cycles_are_found_once_each(rules: list[Rule], cycles: list[str]) -> None:
    found = emit_cycles(rules)
    assert [p.message.split(" (")[0] for p in found] == [f"emit cycle: {c}" for c in cycles]
    by_name = {r.name: r for r in rules}
    assert [p.line for p in found] == [by_name[c.split(" ")[0]].line for c in cycles]


def test_a_field_the_hubs_own_fact_never_carries_is_named_with_the_right_one(
    tmp_path: Path,
) -> None:
    """The earlier release's data.previous would silently never match again."""
    p = only(
        tmp_path,
        """
        rules:
          - name: bye
            when: {fact: profile.unsubscribed, all: [data.previous: subscribed]}
            then: [{update_profile: {add_tags: [gone]}}]
        """,
    )
    assert "rule 'bye': profile.unsubscribed has no data.previous" in str(p)
    assert "did you mean 'data.previous_status'?" in str(p)


@pytest.mark.parametrize(
    "when",
    [
        "{fact: profile.unsubscribed, all: [data.previous_status: subscribed]}",
        "{fact: profile.updated, all: [data.changed: {contains: tags}]}",
        "{fact: mail.sent, all: [data.caused_by.rule: {exists: true}]}",
        "{fact: order.placed, all: [data.anything: 1]}",  # not one of the hub's own facts
        "{fact: 'profile.*', all: [data.previous: subscribed]}",  # a glob: several schemas
    ],
)
def test_fields_the_own_facts_carry_and_other_facts_are_not_questioned(
    tmp_path: Path, when: str
) -> None:
    text = f"""
        rules:
          - name: r
            when: {when}
            then: [{{update_profile: {{add_tags: [t]}}}}]
        """
    assert problems(tmp_path, text) == []


def test_an_own_type_a_rule_also_emits_carries_what_the_emit_gives(tmp_path: Path) -> None:
    text = """
        rules:
          - name: raise
            when: {fact: order.placed}
            then: [{emit: {type: mail.sent, data: {campaign: spring}}}]
          - name: read
            when: {fact: mail.sent, all: [data.campaign: spring]}
            then: [{update_profile: {add_tags: [spring]}}]
        """
    assert problems(tmp_path, text) == []
