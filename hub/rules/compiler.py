"""Compiling rule conditions to durable_rules' JSON form, with the kind guards.

Every comparison is guarded by the kind of its path (``_t.kN`` in the document, see
:class:`PathIndex` and :func:`hub.rules.conditions.kind`), so that durable_rules and the Python
reading in :mod:`hub.rules.conditions` agree. What durable cannot express is returned as a
*residual* for the engine to evaluate in Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hub.rules.conditions import (
    _MISSING,
    ORDERED,
    PYTHON_ONLY_OPS,
    Compare,
    Condition,
    Group,
    History,
    kind,
    lookup,
)


def type_pattern_to_regex(pattern: str) -> str:
    """A fact-type glob (``order.*``) as durable_rules' anchored regex dialect.

    That dialect has no backslash escapes, so a literal dot is written ``[.]``.
    """
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch in ".-":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def _literal_regex(text: str) -> str | None:
    """``text`` as a literal in durable's regex dialect, or None if it cannot be written."""
    if "]" in text or "^" in text or "\n" in text:
        return None
    return "".join(ch if ch.isalnum() or ch == "_" else f"[{ch}]" for ch in text)


class PathIndex:
    """Numbers the paths rules compare, so each document carries their kinds in ``_t``."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        self._outer_first: list[tuple[str, str]] = []

    def key(self, path: str) -> str:
        """Where ``path``'s kind is in a document (``_t.kN``); a new path gets the next number."""
        if path not in self.keys:
            self.keys[path] = f"k{len(self.keys)}"
            # enclosing paths before the paths inside them (see message)
            self._outer_first = sorted(self.keys.items(), key=lambda item: item[0].count("."))
        return f"_t.{self.keys[path]}"

    def kinds(self, doc: dict[str, Any]) -> dict[str, str]:
        """The ``_t`` map of ``doc``: the kind of each numbered path."""
        return {k: kind(lookup(doc, path)) for path, k in self.keys.items()}

    def message(self, doc: dict[str, Any]) -> dict[str, Any]:
        """What durable needs of ``doc``: its type, the compared paths and their kinds.

        durable_rules' expressions refer to nothing else (every comparison goes through
        :meth:`key`), so the rest of the document (profile fields, tags, ids, times) is left
        out: JSON to write and for durable to parse is then a fraction of the document.
        """
        out: dict[str, Any] = {"type": doc.get("type")}
        kinds: dict[str, str] = {}
        ours = {id(out)}  # dicts built here; a value taken from ``doc`` is never written into
        for path, k in self._outer_first:
            value = lookup(doc, path)
            kinds[k] = kind(value)
            if value is _MISSING:
                continue
            node = out
            *parents, last = path.split(".")
            for part in parents:
                child = node.get(part)
                if child is None:
                    child = node[part] = {}
                    ours.add(id(child))
                elif id(child) not in ours:
                    break  # an enclosing path already carries this value whole
                node = child
            else:
                node.setdefault(last, value)
        out["_t"] = kinds
        return out


def rule_to_durable(
    fact_pattern: str, condition: Group, paths: PathIndex | None = None
) -> tuple[dict[str, Any], Group | None]:
    """The durable ``m`` expression of a rule, and the residual durable cannot express.

    The residual (top-level conditions on time, history, or text durable cannot escape) is
    evaluated in Python on the documents durable matched, so durable stays the matcher of
    everything it can match.
    """
    paths = paths or PathIndex()
    if any(ch in fact_pattern for ch in "*?"):
        trigger: dict[str, Any] = {"$mt": {"type": type_pattern_to_regex(fact_pattern)}}
    else:
        trigger = {"type": fact_pattern}
    parts = [trigger]
    residual: list[Condition] = []
    for item in _flatten_all(condition):
        expr = to_durable(item, paths)
        if expr is None or not _fits_durable(expr):
            residual.append(item)
        else:
            parts.append(expr)
    expr = parts[0] if len(parts) == 1 else {"$and": parts}
    return expr, (Group("all", tuple(residual)) if residual else None)


MAX_DISJUNCTS = 1024  # durable expands $or into alternatives; keep that expansion small
MAX_ITEM_TESTS = 8  # measured: 16 alternatives each testing list items fail to load (code 113)


def _dnf(expr: dict[str, Any]) -> tuple[int, int]:
    """(alternatives, list-item tests) once durable has expanded ``expr``."""
    ((key, value),) = expr.items()
    if key == "$or":
        parts = [_dnf(e) for e in value]
        return sum(p[0] for p in parts), sum(p[1] for p in parts)
    if key == "$and":
        alternatives, items = 1, 0
        for n, k in (_dnf(e) for e in value):
            items = items * n + k * alternatives
            alternatives *= n
        return alternatives, items
    return 1, int(key == "$iany")


def _fits_durable(expr: dict[str, Any]) -> bool:
    alternatives, items = _dnf(expr)
    return alternatives <= MAX_DISJUNCTS and items <= MAX_ITEM_TESTS


def _flatten_all(group: Group) -> Iterable[Condition]:
    for item in group.items:
        if isinstance(item, Group) and item.kind == "all":
            yield from _flatten_all(item)
        else:
            yield item


def to_durable(cond: Condition, paths: PathIndex, negate: bool = False) -> dict[str, Any] | None:
    """``cond`` (or its negation) as a durable expression, or None if durable cannot say it."""
    if isinstance(cond, History):
        return None
    if isinstance(cond, Group):
        # all = and; any = or; none = not any = and of negations (De Morgan when negated)
        item_negate = negate != (cond.kind == "none")
        exprs = [to_durable(c, paths, item_negate) for c in cond.items]
        if not exprs or any(e is None for e in exprs):
            return None
        conjunction = (cond.kind == "any") == negate
        if len(exprs) == 1:
            return exprs[0]
        return {"$and" if conjunction else "$or": exprs}
    return _compare_to_durable(cond, paths, negate)


def _and(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"$and": list(parts)}


def _or(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"$or": list(parts)}


def _compare_to_durable(c: Compare, paths: PathIndex, negate: bool) -> dict[str, Any] | None:
    t = paths.key(c.path) if c.op not in PYTHON_ONLY_OPS else ""

    def eq(value: Any, neg: bool) -> dict[str, Any]:
        k = kind(value)
        if k == "z":
            return {"$neq": {t: "z"}} if neg else {t: "z"}
        if neg:
            return _or({"$neq": {t: k}}, {"$neq": {c.path: value}})
        return _and({t: k}, {c.path: value})

    present = {"$neq": {t: "m"}}
    absent = {t: "m"}
    op = c.op
    if op in PYTHON_ONLY_OPS:
        return None
    if op == "eq":
        return eq(c.value, negate)
    if op == "ne":  # present and not equal
        return _or(absent, eq(c.value, False)) if negate else _and(present, eq(c.value, True))
    if op in ORDERED:
        if isinstance(c.value, str) and any(ch < '"' for ch in c.value):
            # durable compares a text over the length of the rule's value and reads past the
            # end of a shorter text into its closing quote: "A" > "A b" holds there. Only a
            # character sorting before '"' (space, "!", control characters) can tell.
            return None
        k = kind(c.value)
        if negate:
            flipped = {"gt": "$lte", "gte": "$lt", "lt": "$gte", "lte": "$gt"}[op]
            return _or({"$neq": {t: k}}, {flipped: {c.path: c.value}})
        return _and({t: k}, {f"${op}": {c.path: c.value}})
    if op == "in":
        return (
            _and(*[eq(v, True) for v in c.value])
            if negate
            else _or(*[eq(v, False) for v in c.value])
        )
    if op == "not_in":
        if negate:
            return _or(absent, *[eq(v, False) for v in c.value])
        return _and(present, *[eq(v, True) for v in c.value])
    if op == "exists":
        return absent if negate else present
    if op == "missing":
        return present if negate else absent
    if negate:  # durable has no "does not match" nor "no item equals"
        return None
    if op == "contains":
        in_list = _and({t: "l"}, {"$iany": {c.path: {"$i": c.value}}})
        if not isinstance(c.value, str):
            return in_list
        literal = _literal_regex(c.value)
        if literal is None:
            return None
        return _or(in_list, _and({t: "s"}, {"$mt": {c.path: f".*{literal}.*"}}))
    if op == "matches":
        return _and(_or({t: "s"}, {t: "e"}), {"$mt": {c.path: c.value}})
    raise ValueError(f"unknown operator {op!r}")
