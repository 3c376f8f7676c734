"""Analyst-written templates: typed values, strict names, one sandbox, HTML escaped in files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from hub.templates import (
    compile_error,
    file_compile_error,
    file_environment,
    render_string,
    render_value,
    template_problems,
)

CONTEXT = {
    "fact": {"data": {"total": 80, "price": 2.5, "paid": True, "lines": [1, 2], "zip": "1234"}},
    "profile": {"fields": {"name": "Ann"}, "tags": ["vip"]},
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ fact.data.total }}", 80),
        ("{{ fact.data.price }}", 2.5),
        ("{{ fact.data.paid }}", True),
        ("{{ fact.data.lines }}", [1, 2]),
        ("{{ fact.data.total * 2 }}", 160),
        ("{{ profile.fields.name }}", "Ann"),
        ("Dear {{ profile.fields.name }}", "Dear Ann"),
        ("{{ fact.data.total }} EUR", "80 EUR"),
        (
            {"a": "{{ fact.data.total }}", "b": ["{{ fact.data.price }}", 3]},
            {"a": 80, "b": [2.5, 3]},
        ),
        ("no template", "no template"),
        (7, 7),
        (None, None),
    ],
)
def test_render_value_keeps_the_type_of_what_it_names(value: Any, expected: Any) -> None:
    rendered = render_value(value, CONTEXT)
    assert rendered == expected
    assert type(rendered) is type(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ fact.data.zip }}", "1234"),  # a postal code stays text
        ("{{ profile.fields.name }}", "Ann"),
        ("{{ fact.data.code }}", "[1, 2]"),
    ],
)
def test_render_value_keeps_text_text(value: str, expected: str) -> None:
    context = CONTEXT | {"fact": {"data": {**CONTEXT["fact"]["data"], "code": "[1, 2]"}}}
    rendered = render_value(value, context)
    assert rendered == expected and isinstance(rendered, str)


TRICKS = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ fact.__class__.__init__.__globals__ }}",
    "{{ profile.tags.append('hacked') }}",
    "{{ profile.fields.update({'name': 'Eve'}) }}",
    "{{ profile.fields.pop('name') }}",
]


@pytest.mark.parametrize("source", TRICKS)
def test_values_refuse_attribute_tricks_and_mutation(source: str) -> None:
    context = {"fact": {"data": {}}, "profile": {"fields": {"name": "Ann"}, "tags": ["vip"]}}
    with pytest.raises(SecurityError):
        render_value(source, context)
    assert context["profile"] == {"fields": {"name": "Ann"}, "tags": ["vip"]}


@pytest.mark.parametrize("source", TRICKS)
def test_texts_refuse_attribute_tricks_and_mutation(source: str) -> None:
    context = {"fact": {"data": {}}, "profile": {"fields": {"name": "Ann"}, "tags": ["vip"]}}
    with pytest.raises(SecurityError):
        render_string(source, context)
    assert context["profile"] == {"fields": {"name": "Ann"}, "tags": ["vip"]}


@pytest.mark.parametrize("source", TRICKS)
def test_files_refuse_attribute_tricks_and_mutation(tmp_path: Path, source: str) -> None:
    (tmp_path / "t.html").write_text(source)
    context = {"fact": {"data": {}}, "profile": {"fields": {"name": "Ann"}, "tags": ["vip"]}}
    try:  # file templates render an unknown name as empty text: nothing may show through
        assert file_environment(str(tmp_path)).get_template("t.html").render(context) == ""
    except SecurityError:
        pass
    assert context["profile"] == {"fields": {"name": "Ann"}, "tags": ["vip"]}


@pytest.mark.parametrize(
    "source", ["{{ profile.fields.nmae }}", "Hi {{ profle.fields.name }}", "{{ nothing }}"]
)
def test_an_undefined_name_is_an_error_not_an_empty_text(source: str) -> None:
    with pytest.raises(UndefinedError):
        render_value(source, CONTEXT)
    with pytest.raises(UndefinedError):
        render_string(source, CONTEXT)


def test_render_string_gives_text() -> None:
    assert render_string("Order of {{ fact.data.total }}", CONTEXT) == "Order of 80"
    assert render_string("{{ fact.data.total }}", CONTEXT) == "80"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ x", ["rule.then: template does not compile"]),
        ({"set": {"ok": "{{ a }}", "bad": "{% if %}"}}, ["rule.then.set.bad: template does not"]),
        ({"tags": ["fine", "{{ a b }}"]}, ["rule.then.tags[1]: template does not compile"]),
        (
            {"a": "{{", "b": [{"c": "{% for %}"}]},
            ["rule.then.a: template does not", "rule.then.b[0].c: template does not"],
        ),
        ({"set": {"ok": "{{ a | upper }}", "n": 3}}, []),
    ],
)
def test_template_problems_names_each_place(value: Any, expected: list[str]) -> None:
    problems = template_problems(value, "rule.then")
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start)


@pytest.mark.parametrize(("source", "ok"), [("Hi {{ name }}", True), ("Hi {{ name", False)])
def test_compile_error_of_a_short_text(source: str, ok: bool) -> None:
    assert (compile_error(source) is None) is ok


def test_html_files_are_escaped_and_text_files_are_not(tmp_path: Path) -> None:
    (tmp_path / "m.html").write_text("<p>{{ name }}</p>")
    (tmp_path / "m.txt").write_text("{{ name }}")
    env = file_environment(str(tmp_path))
    name = '<script>alert("x")</script> & co'
    assert env.get_template("m.html").render(name=name) == (
        "<p>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co</p>"
    )
    assert env.get_template("m.txt").render(name=name) == name


def test_a_changed_template_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "m.txt"
    path.write_text("one {{ n }}")
    env = file_environment(str(tmp_path))
    assert env.get_template("m.txt").render(n=1) == "one 1"
    path.write_text("two, longer {{ n }}")
    assert env.get_template("m.txt").render(n=2) == "two, longer 2"


def test_file_compile_error_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.html").write_text("<p>\n  fine {{ a }}\n  {% if x %}\n</p>\n{{ b c }}\n")
    error = file_compile_error(tmp_path, "bad.html")
    assert error is not None and error.startswith("template bad.html line 5:")
    (tmp_path / "good.html").write_text("<p>{{ a }}</p>")
    assert file_compile_error(tmp_path, "good.html") is None


def test_file_compile_error_of_a_missing_file(tmp_path: Path) -> None:
    error = file_compile_error(tmp_path, "nope.html")
    assert error == f"template file {tmp_path / 'nope.html'} not found"


def test_the_shipped_templates_compile() -> None:
    templates = Path(__file__).resolve().parent.parent / "rules" / "templates"
    names = sorted(p.name for p in templates.iterdir())
    assert names
    assert {n: file_compile_error(templates, n) for n in names} == dict.fromkeys(names)
