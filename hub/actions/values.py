"""Analyst-written values: sandboxed Jinja2 that keeps numbers numbers.

``"{{ fact.data.total }}"`` gives ``80`` (a number), not ``"80"``, so that a field set from a
fact keeps its type and ``increment`` can add to it. The sandbox is Jinja2's immutable one:
no attribute tricks, no mutation of the context.
"""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.nativetypes import NativeCodeGenerator, NativeTemplate, native_concat
from jinja2.sandbox import ImmutableSandboxedEnvironment


class _NativeSandbox(ImmutableSandboxedEnvironment):
    code_generator_class = NativeCodeGenerator
    concat = staticmethod(native_concat)  # type: ignore[assignment]


_NativeSandbox.template_class = NativeTemplate
_env = _NativeSandbox(undefined=StrictUndefined)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def render_value(value: Any, context: dict[str, Any]) -> Any:
    """Render templates inside ``value`` (text, or lists/mappings of them); keep the rest."""
    if isinstance(value, dict):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    if is_template(value):
        return _env.from_string(value).render(context)
    return value


def template_problems(value: Any, where: str) -> list[str]:
    """Every template in ``value`` that does not compile, named by its place."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in template_problems(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in template_problems(v, f"{where}[{i}]")]
    if is_template(value):
        try:
            _env.parse(value)
        except TemplateError as exc:
            return [f"{where}: template does not compile: {exc}"]
    return []
