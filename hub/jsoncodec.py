"""JSON to and from the database: orjson where it gives the same answer, json where not.

A batch evaluation encodes and decodes tens of thousands of small documents (facts' data,
profiles' fields, firings' job lists); with the standard library that was about a fifth of a
worker's time (measured with py-spy on ``bench/spine.py``), orjson does it several times
faster. Its answers differ from the standard library's in two corners, both sent to ``json``:

- integers beyond 64 bits: orjson refuses to encode them and decodes them as floats (losing
  digits), so text with a run of 19 or more digits is decoded by ``json``;
- text json accepts and orjson refuses (lone surrogate escapes): decoded by ``json``.

NaN and Infinity are not JSON; facts carrying them are refused at validation
(:mod:`hub.facts.schema`). One computed later (a template's ``| float`` of "nan") is written as
``null`` by both encoders.

Request bodies are read with ``max_depth`` (:data:`MAX_REQUEST_DEPTH`): a document nested
deeper is a ``ValueError`` like any text that is not JSON, so that no code walking it later
(validation, the rules, the encoder, which stops at 254 levels) meets a ``RecursionError``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # {1: ...} gives {"1": ...}, as json.dumps does
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")
_LONG_DIGITS_STR = re.compile(r"\d{19}")
MAX_REQUEST_DEPTH = 64  # a list of facts, a fact, its data: 32 levels (hub.facts.schema)


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as JSON text (UTF-8, not ASCII-escaped)."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS).decode()
    except TypeError:  # an integer beyond 64 bits, or a type only ``default`` may know
        return json.dumps(_finite(value), default=default, ensure_ascii=False)


def _finite(value: Any) -> Any:
    """``value`` with NaN and Infinity as null, as orjson writes them.

    (``json`` writes ``NaN``, which is not JSON and which PostgreSQL refuses.)
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def loads(text: str | bytes, max_depth: int | None = None) -> Any:
    """The value of JSON ``text``, integers exact whatever their size.

    Raises:
        ValueError: ``text`` is not JSON, or (with ``max_depth``) nests arrays and objects
            deeper than that; Python's own parser gives up past about 1,000 levels.
    """
    value = _loads(text)
    if max_depth is not None and _deeper_than(value, text, max_depth):
        raise ValueError(f"arrays and objects are nested more than {max_depth} levels deep")
    return value


def _loads(text: str | bytes) -> Any:
    long_digits = _LONG_DIGITS_BYTES if isinstance(text, bytes) else _LONG_DIGITS_STR
    if long_digits.search(text) is None:  # type: ignore[arg-type]
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("arrays and objects are nested too deeply") from None


def _deeper_than(value: Any, text: str | bytes, limit: int) -> bool:
    """True if ``value`` nests containers more than ``limit`` deep (walked without recursion)."""
    if isinstance(text, bytes):
        opened = text.count(b"[") + text.count(b"{")
    else:
        opened = text.count("[") + text.count("{")
    if opened <= limit:  # cannot be deeper than the brackets it has: the usual case, no walk
        return False
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False
