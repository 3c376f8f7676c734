"""Analyst-written templates run in Jinja2's sandbox: no attribute tricks, no file access."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

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
