"""Rule conditions: one tree, two readings.

:func:`to_durable` compiles a condition to durable_rules' JSON form (what the engine runs);
:func:`evaluate` reads the same tree in Python (used to explain why a rule did not fire and
as the reference the engine is tested against).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Literal

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in")
ROOTS = ("data", "profile", "fact")
_MISSING = object()


@dataclass(frozen=True)
class Compare:
    """``path op value``; a missing path makes every comparison false."""

    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class Group:
    """``all`` (and), ``any`` (or) or ``none`` (not any) of the items."""

    kind: Literal["all", "any", "none"]
    items: tuple[Condition, ...]


Condition = Compare | Group

_DURABLE_OPS = {"ne": "$neq", "gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}


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


def rule_to_durable(fact_pattern: str, condition: Group) -> dict[str, Any]:
    """The durable_rules ``m`` expression for a rule's trigger and conditions."""
    if any(ch in fact_pattern for ch in "*?"):
        trigger: dict[str, Any] = {"$mt": {"type": type_pattern_to_regex(fact_pattern)}}
    else:
        trigger = {"type": fact_pattern}
    if not condition.items:
        return trigger
    return {"$and": [trigger, to_durable(condition)]}


def to_durable(cond: Condition) -> dict[str, Any]:
    if isinstance(cond, Compare):
        if cond.op == "eq":
            return {cond.path: cond.value}
        if cond.op == "in":
            return {"$or": [{cond.path: v} for v in cond.value]}
        return {_DURABLE_OPS[cond.op]: {cond.path: cond.value}}
    parts = [to_durable(c) for c in cond.items]
    if cond.kind == "all":
        return parts[0] if len(parts) == 1 else {"$and": parts}
    either = parts[0] if len(parts) == 1 else {"$or": parts}
    if cond.kind == "any":
        return either
    return _negate(either)


def _negate(expr: dict[str, Any]) -> dict[str, Any]:
    """De Morgan over durable's operators, which have no plain ``not``."""
    ((key, value),) = expr.items()
    if key == "$and":
        return {"$or": [_negate(e) for e in value]}
    if key == "$or":
        return {"$and": [_negate(e) for e in value]}
    flipped = {"$neq": None, "$gt": "$lte", "$gte": "$lt", "$lt": "$gte", "$lte": "$gt"}
    if key in flipped:
        if key == "$neq":
            return dict(value)
        return {flipped[key]: value}
    return {"$neq": {key: value}}


def lookup(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if actual is _MISSING:
        return False
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op == "in":
        return actual in expected
    try:
        if op == "gt":
            return actual > expected
        if op == "gte":
            return actual >= expected
        if op == "lt":
            return actual < expected
        if op == "lte":
            return actual <= expected
    except TypeError:
        return False
    raise ValueError(f"unknown operator {op!r}")


def evaluate(cond: Condition, doc: dict[str, Any]) -> bool:
    """The Python reading of a condition over the document the engine sees."""
    if isinstance(cond, Compare):
        return _compare(lookup(doc, cond.path), cond.op, cond.value)
    results = (evaluate(c, doc) for c in cond.items)
    if cond.kind == "all":
        return all(results)
    if cond.kind == "any":
        return any(results)
    return not any(results)


def first_failing(cond: Condition, doc: dict[str, Any]) -> Condition | None:
    """The first condition that does not hold, for "why did this rule not fire"."""
    if isinstance(cond, Compare) or cond.kind != "all":
        return None if evaluate(cond, doc) else cond
    for item in cond.items:
        failing = first_failing(item, doc)
        if failing is not None:
            return failing
    return None


def type_matches(pattern: str, fact_type: str) -> bool:
    return fnmatch.fnmatchcase(fact_type, pattern)
