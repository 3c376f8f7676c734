"""Rule conditions: one tree, two readings.

:func:`hub.rules.compiler.rule_to_durable` compiles what durable_rules can match to its JSON
form (what the engine runs); :func:`evaluate` here reads the same tree in Python (used for the
parts durable cannot express, to explain why a rule did not fire, and as the reference the
engine is tested against).

Comparisons are *type-guarded* so that both readings agree: durable_rules compares a text with
a number (``"abc" > 5`` is true there, a ``TypeError`` in Python) and treats ``"3" == 3`` as
equal. Every document the engine sees therefore carries ``_t``, the kind of each path the
rules use (``m`` missing, ``z`` null, ``b`` boolean, ``n`` number, ``s`` text, ``e`` empty
text, ``l`` list, ``d`` mapping), and a comparison holds only between values of the same
kind. (durable orders an empty text after texts that start with a space, so ordering
comparisons only hold between numbers or between non-empty texts.)
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from hub.times import parse_time

OPERATORS = (
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "contains",
    "matches",
    "exists",
    "missing",
    "within",
    "before",
)
ORDERED = ("gt", "gte", "lt", "lte")
PYTHON_ONLY_OPS = ("within", "before")  # relative to "now": evaluated after the engine
ROOTS = ("data", "profile", "fact")
_MISSING = object()
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: Any) -> int:
    """Seconds in ``30s``, ``15m``, ``2h``, ``7d`` or ``1w``; raise ValueError otherwise."""
    match = _DURATION.match(str(text).strip()) if isinstance(text, str | int) else None
    if isinstance(text, bool) or match is None:
        raise ValueError(f"{text!r} is not a duration such as 30m, 2h, 7d or 1w")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class Compare:
    """``path op value``; apart from ``missing`` a missing path makes a comparison false."""

    path: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class History:
    """The profile had facts of ``fact`` (matching ``where``) in a window; ``count`` of them.

    ``within`` (seconds) looks back from now; ``since_trigger`` looks at facts after the
    fact that triggered a follow-up (for ``unless``). The fact being evaluated never counts.
    """

    fact: str
    where: Group | None = None
    within: int | None = None
    since_trigger: bool = False
    count_op: str = "gte"
    count: int = 1


@dataclass(frozen=True)
class Group:
    """``all`` (and), ``any`` (or) or ``none`` (not any) of the items."""

    kind: Literal["all", "any", "none"]
    items: tuple[Condition, ...]


Condition = Compare | Group | History


class Context(Protocol):
    """What conditions that look beyond the document need: the clock and the past."""

    now: datetime

    def facts(self, doc: dict[str, Any], since: datetime | None) -> list[dict[str, Any]]:
        """Documents (``type``, ``data``, ``fact``) of the profile's other facts since ``since``."""
        ...


@dataclass
class StaticContext:
    """A clock and an optional history callback: for simulation, scenarios and tests."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    history: Callable[[dict[str, Any], datetime | None], list[dict[str, Any]]] | None = None

    def facts(self, doc: dict[str, Any], since: datetime | None) -> list[dict[str, Any]]:
        """What the ``history`` callback gives; no facts without one."""
        return self.history(doc, since) if self.history else []


def kind(value: Any) -> str:
    """The kind letter of a value, as in the documents' ``_t`` map."""
    if value is _MISSING:
        return "m"
    if value is None:
        return "z"
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int | float):
        return "n"
    if isinstance(value, str):
        return "s" if value else "e"  # durable orders "" oddly: empty text is a kind apart
    if isinstance(value, list):
        return "l"
    return "d"


def lookup(doc: dict[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in ``doc``; the missing marker (kind ``m``) if absent."""
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _same(actual: Any, expected: Any) -> bool:
    return kind(actual) == kind(expected) and actual == expected


def _compare(actual: Any, op: str, expected: Any, ctx: Context | None) -> bool:
    if op == "missing":
        return actual is _MISSING
    if actual is _MISSING:
        return False
    if op == "exists":
        return True
    if op == "eq":
        return _same(actual, expected)
    if op == "ne":
        return not _same(actual, expected)
    if op == "in":
        return any(_same(actual, v) for v in expected)
    if op == "not_in":
        return not any(_same(actual, v) for v in expected)
    if op in ORDERED:
        if kind(actual) != kind(expected):
            return False
        return {
            "gt": actual > expected,
            "gte": actual >= expected,
            "lt": actual < expected,
            "lte": actual <= expected,
        }[op]
    if op == "contains":
        if isinstance(actual, list):
            return expected in actual
        return isinstance(actual, str) and isinstance(expected, str) and expected in actual
    if op == "matches":
        return isinstance(actual, str) and re.fullmatch(expected, actual) is not None
    if op in ("within", "before"):
        when = parse_time(actual)
        if when is None:
            return False
        now = ctx.now if ctx else datetime.now(UTC)
        edge = now - timedelta(seconds=parse_duration(expected))
        return edge <= when <= now if op == "within" else when < edge
    raise ValueError(f"unknown operator {op!r}")


def count_history(h: History, doc: dict[str, Any], ctx: Context | None) -> int:
    """How many of the profile's other facts match ``h`` (its type, window and ``where``)."""
    if ctx is None:
        return 0
    now = ctx.now
    since: datetime | None = None
    if h.within is not None:
        since = now - timedelta(seconds=h.within)
    if h.since_trigger:
        trigger = parse_time(lookup(doc, "fact.occurred_at"))
        since = max(since, trigger) if since and trigger else (trigger or since)
    own = _position(doc)
    n = 0
    for other in ctx.facts(doc, since):
        place = _position(other)
        if own is not None and place is not None:
            # history is what came before the fact; "since the trigger" what came after it
            if (place <= own) if h.since_trigger else (place >= own):
                continue
        when = place[0] if place else None
        if when is not None and (when > now or (since is not None and when < since)):
            continue
        if not type_matches(h.fact, other.get("type", "")):
            continue
        if h.where is None or evaluate(h.where, other, ctx):
            n += 1
    return n


def _position(doc: dict[str, Any]) -> tuple[datetime, int] | None:
    """Where a fact stands in a profile's history: (occurred_at, id), ties broken by id."""
    fact = doc.get("fact") or {}
    when = parse_time(doc["_at"] if "_at" in doc else fact.get("occurred_at"))
    fid = fact.get("id")
    if when is None or not isinstance(fid, int):
        return None
    return when, fid


def evaluate(cond: Condition, doc: dict[str, Any], ctx: Context | None = None) -> bool:
    """The Python reading of a condition over the document the engine sees."""
    if isinstance(cond, Compare):
        return _compare(lookup(doc, cond.path), cond.op, cond.value, ctx)
    if isinstance(cond, History):
        n = count_history(cond, doc, ctx)
        return _compare(n, cond.count_op, cond.count, ctx)
    results = (evaluate(c, doc, ctx) for c in cond.items)
    if cond.kind == "all":
        return all(results)
    if cond.kind == "any":
        return any(results)
    return not any(results)


def first_failing(
    cond: Condition, doc: dict[str, Any], ctx: Context | None = None
) -> Condition | None:
    """The first condition that does not hold, for "why did this rule not fire"."""
    if not isinstance(cond, Group) or cond.kind != "all":
        return None if evaluate(cond, doc, ctx) else cond
    for item in cond.items:
        failing = first_failing(item, doc, ctx)
        if failing is not None:
            return failing
    return None


def describe(cond: Condition, doc: dict[str, Any] | None = None, ctx: Context | None = None) -> str:
    """A condition as an analyst wrote it, with the value the document had."""
    if isinstance(cond, Compare):
        text = f"{cond.path} {cond.op}" + (
            "" if cond.op in ("exists", "missing") else f" {cond.value!r}"
        )
        if doc is not None:
            actual = lookup(doc, cond.path)
            text += " (it is missing)" if actual is _MISSING else f" (it is {actual!r})"
        return text
    if isinstance(cond, History):
        window = f" in the last {cond.within}s" if cond.within else ""
        window += " since the trigger" if cond.since_trigger else ""
        text = f"history of {cond.fact}{window}: count {cond.count_op} {cond.count}"
        if doc is not None:
            text += f" (it is {count_history(cond, doc, ctx)})"
        return text
    return f"{cond.kind} of [" + "; ".join(describe(c) for c in cond.items) + "]"


@functools.lru_cache(maxsize=8192)
def type_matches(pattern: str, fact_type: str) -> bool:
    """Whether a fact type matches a rule's glob.

    Asked for every past fact a history condition reads, so the answers are kept (a rule set
    has few patterns and types).
    """
    return fnmatch.fnmatchcase(fact_type, pattern)


# --- plain data, for conditions carried by delayed jobs ------------------------------------


def to_plain(cond: Condition) -> dict[str, Any]:
    """``cond`` as JSON data, for the arguments of a delayed job; :func:`from_plain` reads it."""
    if isinstance(cond, Compare):
        return {"compare": [cond.path, cond.op, cond.value]}
    if isinstance(cond, History):
        return {
            "history": {
                "fact": cond.fact,
                "where": to_plain(cond.where) if cond.where else None,
                "within": cond.within,
                "since_trigger": cond.since_trigger,
                "count": [cond.count_op, cond.count],
            }
        }
    return {"group": cond.kind, "items": [to_plain(c) for c in cond.items]}


def from_plain(data: dict[str, Any]) -> Condition:
    """The condition :func:`to_plain` wrote."""
    if "compare" in data:
        path, op, value = data["compare"]
        return Compare(path, op, value)
    if "history" in data:
        h = data["history"]
        return History(
            fact=h["fact"],
            where=from_plain(h["where"]) if h["where"] else None,  # type: ignore[arg-type]
            within=h["within"],
            since_trigger=h["since_trigger"],
            count_op=h["count"][0],
            count=h["count"][1],
        )
    return Group(data["group"], tuple(from_plain(c) for c in data["items"]))
