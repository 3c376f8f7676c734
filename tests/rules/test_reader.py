"""Bad rule files: each class of mistake gives one precise ``file:line:column: message``."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.actions import ACTIONS
from hub.cli.main import main
from hub.rules.exceptions import RuleProblem
from hub.rules.reader import check_rules

ROOT = Path(__file__).resolve().parents[2]


def problems(tmp_path: Path, text: str) -> list[RuleProblem]:
    shutil.copytree(ROOT / "rules" / "templates", tmp_path / "templates", dirs_exist_ok=True)
    (tmp_path / "bad.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    return check_rules(tmp_path, ACTIONS)[1]


def only(tmp_path: Path, text: str) -> RuleProblem:
    found = problems(tmp_path, text)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: x
            when: {fact: order.placed
            then: []
        """,
    )
    assert p.line == 4 and p.message.startswith("YAML:")


def test_a_file_without_rules(tmp_path: Path) -> None:
    p = only(tmp_path, "rulez: []\n")
    assert (p.line, p.column) == (1, 1)
    assert "a rule file holds 'rules'" in p.message


def test_unknown_key_in_a_rule_suggests_the_right_one(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: x
            when: {fact: order.placed}
            prority: 3
            then: [{update_profile: {add_tags: [a]}}]
        """,
    )
    assert (p.line, p.column) == (4, 5)
    assert p.message.startswith("unknown key 'prority' in rule; did you mean 'priority'?")


def test_missing_then(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: lonely
            when: {fact: order.placed}
        """,
    )
    assert p.line == 2 and p.message == "rule 'lonely' needs 'then'"


def test_malformed_fact_pattern(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: x
            when: {fact: "Order Placed"}
            then: [{update_profile: {add_tags: [a]}}]
        """,
    )
    assert p.line == 3 and "'fact' must be a fact type" in p.message


def test_unknown_operator_suggests_the_right_one(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: x
            when:
              fact: order.placed
              all:
                - data.total: {gtee: 50}
            then: [{update_profile: {add_tags: [a]}}]
        """,
    )
    assert (p.line, p.column) == (6, 24)
    assert p.message.startswith("unknown operator 'gtee'; did you mean 'gte'?")


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("data.x: {in: 3}", "'in' takes a non-empty list of values"),
        ("data.x: {gt: true}", "'gt' compares with a number or a non-empty text, not True"),
        (
            "data.x: {matches: 'a\\\\.b'}",
            "'matches': no backslash escapes; write a literal dot as [.]",
        ),
        ("data.x: {matches: '(a'}", "'matches': invalid regular expression"),
        (
            "data.x: {within: 7 days}",
            "'within': '7 days' is not a duration such as 30m, 2h, 7d or 1w",
        ),
        ("data.x: {exists: 3}", "'exists' takes no value (write 'exists: true')"),
        ("data.x: [1, 2]", "data.x: compare with one value; for a list use 'in'"),
    ],
)
def test_bad_operands(tmp_path: Path, condition: str, message: str) -> None:
    p = only(
        tmp_path,
        f"""
        rules:
          - name: x
            when:
              fact: order.placed
              all:
                - {condition}
            then: [{{update_profile: {{add_tags: [a]}}}}]
        """,
    )
    assert p.line == 6 and p.message.startswith(message)


def test_condition_path_outside_the_document(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: x
            when:
              fact: order.placed
              all:
                - total: {gt: 5}
            then: [{update_profile: {add_tags: [a]}}]
        """,
    )
    assert (p.line, p.column) == (6, 11)
    assert p.message.startswith("condition path 'total' must start with data., profile. or fact.")


def test_unknown_action_suggests_the_right_one(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: x
            when: {fact: order.placed}
            then:
              - send_mial: {template: welcome, subject: hi}
        """,
    )
    assert (p.line, p.column) == (5, 9)
    assert p.message.startswith("unknown action 'send_mial'; did you mean 'send_mail'?")


def test_unknown_parameter_suggests_the_right_one(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        rules:
          - name: x
            when: {fact: order.placed}
            then:
              - send_mail: {template: welcome, subjet: hi}
        """,
    )
    assert [(p.line, p.message) for p in found] == [
        (5, "send_mail: subject: Field required"),
        (5, "send_mail: subjet: unknown parameter; did you mean 'subject'?"),
    ]


def test_bad_parameter_value(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: x
            when: {fact: order.placed}
            then:
              - send_mail: {template: welcome, subject: hi, kind: urgent}
        """,
    )
    assert p.line == 5 and p.message.startswith("send_mail: kind: Input should be 'marketing' or")


def test_template_that_does_not_compile(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: x
            when: {fact: order.placed}
            then:
              - update_profile: {set: {greeting: "{{ profile.fields.name "}}
        """,
    )
    assert p.line == 5
    assert p.message.startswith("update_profile: set.greeting: template does not compile")


def test_missing_template_file(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: x
            when: {fact: order.placed}
            then:
              - send_mail: {template: no-such-template, subject: hi}
        """,
    )
    assert p.line == 5 and "no-such-template.html not found" in p.message


def test_duplicate_rule_name_points_at_the_first(tmp_path: Path) -> None:
    p = only(
        tmp_path,
        """
        rules:
          - name: twice
            when: {fact: order.placed}
            then: [{update_profile: {add_tags: [a]}}]
          - name: twice
            when: {fact: order.placed}
            then: [{update_profile: {add_tags: [b]}}]
        """,
    )
    assert (
        p.line == 5 and p.message == f"duplicate rule name 'twice' (first at {tmp_path}/bad.yaml:2)"
    )


@pytest.mark.parametrize(
    ("timing", "line", "message"),
    [
        ("after: soon", 6, "after: 'soon' is not a duration"),
        ("after: 1d\n                at: '2026-01-01'", 7, "give either 'after' or 'at', not both"),
        ("unless: [{profile.status: unsubscribed}]", 6, "'unless' is checked when a delay ends"),
        ("at: '{{ fact.data.when '", 6, "at: template does not compile"),
    ],
)
def test_bad_follow_up_timing(tmp_path: Path, timing: str, line: int, message: str) -> None:
    p = only(
        tmp_path,
        f"""
        rules:
          - name: x
            when: {{fact: order.placed}}
            then:
              - update_profile: {{add_tags: [a]}}
                {timing}
        """,
    )
    assert p.line == line and p.message.startswith(message)


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("at_most: once a week", "'at_most' is 'N per DURATION', such as '1 per 7d'"),
        ("priority: high", "'priority' is a whole number"),
        ("once_per_profile: sometimes", "'once_per_profile' is true or false"),
    ],
)
def test_bad_limits(tmp_path: Path, limit: str, message: str) -> None:
    p = only(
        tmp_path,
        f"""
        rules:
          - name: x
            {limit}
            when: {{fact: order.placed}}
            then: [{{update_profile: {{add_tags: [a]}}}}]
        """,
    )
    assert (p.line, p.column) == (3, 5) and p.message == message


def test_bad_history_condition(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        rules:
          - name: x
            when:
              fact: order.placed
              all:
                - history: {fact: order.placed, since: yesterday, cuont: 2}
            then: [{update_profile: {add_tags: [a]}}]
        """,
    )
    assert [(p.line, p.message.split(";")[0]) for p in found] == [
        (6, "unknown key 'cuont' in history"),
        (6, "history 'since' can only be 'trigger'"),
    ]


def test_check_command_prints_file_line_column_and_exits_1(tmp_path: Path) -> None:
    problems(
        tmp_path,
        """
        rules:
          - name: x
            when: {fact: order.placed}
            then:
              - send_mial: {template: welcome, subject: hi}
        """,
    )
    result = CliRunner().invoke(main, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path}/bad.yaml:5:9: unknown action 'send_mial'; did you mean 'send_mail'?" in (
        result.output
    )
