"""Analyst-written templates, all run in Jinja2's immutable sandbox.

The sandbox allows no attribute tricks, no mutation of the context, and no file access
beyond the template directory.

Three uses, one policy: *values* in rule parameters keep their type (``"{{ fact.data.total }}"``
gives ``80``, a number, so that a field set from a fact keeps its type and ``increment`` can
add to it); short *texts* such as a subject line render to a string; template *files*
(``templates/*.html`` and ``*.txt``) are auto-escaped when they are HTML. Undefined names are
errors everywhere, so a typo fails the check instead of sending an empty greeting.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from itertools import chain, islice
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, Undefined, select_autoescape
from jinja2.nativetypes import NativeCodeGenerator, NativeTemplate
from jinja2.sandbox import ImmutableSandboxedEnvironment


def _typed_concat(values: Iterator[Any]) -> Any:
    """One expression gives its value as it is; anything else gives text.

    Jinja2's own native concat also reads text that looks like a Python literal (a postal
    code ``"1234"`` became the number 1234, ``"[1, 2]"`` a list): text stays text here. An
    undefined name is an error, also when it is the whole template.
    """
    head = list(islice(values, 2))
    if not head:
        return None  # nothing rendered (an ``{% if %}`` that did not hold): no value
    if len(head) == 1 and not isinstance(head[0], str):
        value = head[0]
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return value
    return "".join(str(v) for v in chain(head, values))


class _NativeSandbox(ImmutableSandboxedEnvironment):
    code_generator_class = NativeCodeGenerator


class _TypedTemplate(NativeTemplate):
    def render(self, *args: Any, **kwargs: Any) -> Any:
        """The template's value (see :func:`_typed_concat`), as NativeTemplate renders it."""
        ctx = self.new_context(dict(*args, **kwargs))
        try:
            return _typed_concat(self.root_render_func(ctx))
        except Exception:  # noqa: BLE001 - Jinja2 rewrites the traceback and re-raises
            return self.environment.handle_exception()


_NativeSandbox.template_class = _TypedTemplate
_value_env = _NativeSandbox(undefined=StrictUndefined)


def is_template(value: Any) -> bool:
    """Whether ``value`` is text holding a Jinja2 expression or statement."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def render_value(value: Any, context: dict[str, Any]) -> Any:
    """Render templates inside ``value`` (text, or lists/mappings of them); keep the rest."""
    if isinstance(value, dict):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    if is_template(value):
        return _value_env.from_string(value).render(context)
    return value


def template_problems(value: Any, where: str) -> list[str]:
    """Every template in ``value`` that does not compile, named by its place."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in template_problems(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in template_problems(v, f"{where}[{i}]")]
    if is_template(value):
        try:
            _value_env.parse(value)
        except TemplateError as exc:
            return [f"{where}: template does not compile: {exc}"]
    return []


_text_env = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


@lru_cache(maxsize=8)
def file_environment(templates_dir: str) -> ImmutableSandboxedEnvironment:
    """The sandbox for ``templates/*.html`` and ``*.txt``; HTML is auto-escaped."""
    return ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(templates_dir),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        auto_reload=True,
    )


def render_string(source: str, context: dict[str, Any]) -> str:
    """Render a short template such as a subject line; undefined names are errors."""
    return _text_env.from_string(source).render(context)


def compile_error(source: str) -> str | None:
    """Why ``source`` does not compile, or None."""
    try:
        _text_env.parse(source)
    except TemplateError as exc:
        return str(exc)
    return None


def file_compile_error(templates_dir: Path, name: str) -> str | None:
    """Why template file ``name`` is missing or does not compile, or None."""
    path = templates_dir / name
    if not path.is_file():
        return f"template file {path} not found"
    try:
        file_environment(str(templates_dir)).parse(path.read_text(encoding="utf-8"))
    except TemplateError as exc:
        return f"template {name} line {getattr(exc, 'lineno', '?')}: {exc}"
    return None
