"""Form-encoded bodies decoded as PHP decodes ``$_POST``.

A PHP sender such as Drupal's Webform (Guzzle ``form_params``, that is ``http_build_query``)
writes nested data in bracket names; this is what it means by them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

from connectors.exceptions import PayloadInvalid

# Limits of a form-encoded body: bracket levels in one name, and name=value pairs (PHP's
# max_input_nesting_level and max_input_vars are 64 and 1000; PHP drops what is past them
# silently, the hub refuses the body instead of storing part of it).
MAX_NESTING = 8
MAX_PAIRS = 1000
_PHP_INT = re.compile(r"^(?:0|-?[1-9][0-9]{0,18})$")


class _PhpArray:
    """A PHP array while a body is decoded: ordered keys (int or str) and the next index."""

    __slots__ = ("items", "next_index")

    def __init__(self) -> None:
        self.items: dict[int | str, Any] = {}
        self.next_index = 0

    def set(self, key: int | str | None, value: Any) -> int | str:
        """``$a[key] = value`` (``key`` None: ``$a[] = value``); the key it was set under."""
        if key is None:
            key = self.next_index
        if isinstance(key, int) and key >= self.next_index:
            self.next_index = key + 1
        self.items[key] = value
        return key

    def plain(self) -> list[Any] | dict[str, Any]:
        """As JSON data: a list when the keys are 0 to n-1 in order, else an object."""
        values = [v.plain() if isinstance(v, _PhpArray) else v for v in self.items.values()]
        if list(self.items) == list(range(len(self.items))):
            return values
        return {str(k): v for k, v in zip(self.items, values, strict=True)}


def php_form(body: bytes) -> dict[str, Any]:
    """A form-encoded body decoded as PHP decodes ``$_POST`` (``php_register_variable_ex``).

    ``a[b][c]=x`` nests, ``a[]=x`` appends, a later value of a name replaces an earlier one,
    ``+`` is a space, a pair without ``=`` is an empty value and blank values are kept. An
    array whose keys are 0 to n-1 in order (what ``http_build_query`` writes for a PHP list)
    becomes a list, any other an object. As PHP does, text after a name's last ``]`` is
    ignored and an unclosed first ``[`` becomes ``_``; unlike PHP, ``.`` and spaces in a
    top-level name are kept (PHP turns them into ``_``, a relic of ``register_globals``).

    Raises :class:`PayloadInvalid` naming the field for a name nested more than
    :data:`MAX_NESTING` levels, a body of more than :data:`MAX_PAIRS` pairs, and a name or
    value that is not UTF-8 once decoded.
    """
    root = _PhpArray()
    pairs = [chunk for chunk in body.split(b"&") if chunk]
    for count, chunk in enumerate(pairs, 1):
        raw_name, _, raw_value = chunk.partition(b"=")
        name = _form_text(raw_name, "", "a field name is not UTF-8 text").lstrip(" ")
        if count > MAX_PAIRS:
            raise PayloadInvalid(name, f"the body has more than {MAX_PAIRS} fields")
        parsed = _php_name(name)
        if parsed is None:
            continue  # PHP drops a pair without a name
        base, path = parsed
        value = _form_text(raw_value, base, "is not UTF-8 text")
        if len(path) > MAX_NESTING:
            raise PayloadInvalid(base, f"is nested more than {MAX_NESTING} levels deep")
        _assign(root, base, path, value)
    plain = root.plain()
    return plain if isinstance(plain, dict) else {str(n): v for n, v in enumerate(plain)}


def _form_text(raw: bytes, field: str, problem: str) -> str:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadInvalid(field, problem) from None


def _php_name(name: str) -> tuple[str, list[str | None]] | None:
    """A name split as PHP splits it: ``a[b][]`` is ``("a", ["b", None])``; ``None``: no name."""
    start = name.find("[")
    if start < 0:
        return (name, []) if name else None
    base, pos = name[:start], start
    if not base:
        return None
    indexes: list[str | None] = []
    while pos < len(name) and name[pos] == "[":
        end = name.find("]", pos + 1)
        if end < 0:
            if not indexes:  # PHP: an unclosed first bracket is part of the name, as "_"
                return base + "_" + name[start + 1 :], []
            break  # a later one ends the name where it opens
        index = name[pos + 1 : end]
        indexes.append(index if index else None)
        pos = end + 1
    return base, indexes


def _assign(root: _PhpArray, base: str, path: list[str | None], value: str) -> None:
    container: _PhpArray = root
    key: int | str | None = _php_key(base)
    for index in path:
        current = container.items.get(key) if key is not None else None
        if not isinstance(current, _PhpArray):  # a scalar there is replaced, as in PHP
            current = _PhpArray()
            key = container.set(key, current)
        container, key = current, (None if index is None else _php_key(index))
    container.set(key, value)


def _php_key(text: str) -> int | str:
    """PHP's array key for ``text``: a decimal integer string is an integer key."""
    return int(text) if _PHP_INT.match(text) and abs(int(text)) < 2**63 else text
