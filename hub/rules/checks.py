"""Checks across a whole rule set: fact types that look like typos, and emit cycles.

Kept apart from :mod:`hub.rules.reader` (which reads one file at a time) because they need every
rule of the directory.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from hub.facts.own import OWN_FACTS
from hub.rules.conditions import Compare, Condition, Group, type_matches
from hub.rules.exceptions import RuleProblem
from hub.rules.model import Rule

# Fact types the hub knows of: its own, and those its connectors and forms send. A type in a
# rule that is not known but close to a known one is almost always a typo and is an error
# ("did you mean"); a type far from every known one is taken as a new source's type.
HUB_FACT_TYPES = tuple(OWN_FACTS) + (
    "profile.bounced",
    "profile.registered",
    "form.submitted",
    "form.draft",
    "form.deleted",
    "survey.completed",
    "record.deleted",
)
KNOWN_FACT_TYPES = HUB_FACT_TYPES + (
    "order.placed",
    "order.updated",
    "order.shipped",
    "order.cancelled",
    "order.refunded",
    "cart.abandoned",
    "customer.created",
    "customer.updated",
    "invoice.created",
    "invoice.paid",
    "exact.record.deleted",
    "newsletter.subscribed",
)


def known_fact_types(declared: set[str], rules: Sequence[Rule]) -> set[str]:
    """Built-in types, types declared under ``fact_types:`` and types rules ``emit``."""
    known = set(KNOWN_FACT_TYPES) | declared
    for rule in rules:
        for action in rule.actions:
            if action.name == "emit":
                known.add(action.params["type"])
    return known


def unknown_fact_types(
    patterns: Sequence[tuple[str, str, int, int]], declared: set[str], rules: Sequence[Rule]
) -> list[RuleProblem]:
    """A problem for each exact fact type that is close to a known type without being one.

    Such a type is almost always a typo. ``patterns`` are (file, type, line, column).
    """
    known = known_fact_types(declared, rules)
    problems = []
    for path, pattern, line, column in patterns:
        if any(ch in pattern for ch in "*?") or pattern in known:
            continue
        close = difflib.get_close_matches(pattern, sorted(known), n=1, cutoff=0.8)
        if close:
            problems.append(
                RuleProblem(
                    path,
                    line,
                    column,
                    f"unknown fact type {pattern!r}; did you mean {close[0]!r}? "
                    "(declare a new type under 'fact_types:')",
                )
            )
    return problems


def emit_cycles(rules: Sequence[Rule]) -> list[RuleProblem]:
    """Rules that trigger each other through ``emit`` actions without end."""
    emits = {r.name: [a.params["type"] for a in r.actions if a.name == "emit"] for r in rules}
    edges = {
        rule.name: [
            other.name
            for other in rules
            if any(type_matches(other.fact_pattern, t) for t in emits[rule.name])
        ]
        for rule in rules
    }
    by_name = {r.name: r for r in rules}
    problems: list[RuleProblem] = []
    reported: set[frozenset[str]] = set()
    for start in edges:
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in edges.get(node, []):
                if nxt == start:
                    cycle = frozenset(trail)
                    if cycle not in reported:
                        reported.add(cycle)
                        rule = by_name[start]
                        chain = " -> ".join([*trail, start])
                        problems.append(
                            RuleProblem(
                                rule.file,
                                rule.line,
                                1,
                                f"emit cycle: {chain} (each emits a fact the next one triggers on)",
                            )
                        )
                elif nxt not in trail and len(trail) < 20:
                    stack.append((nxt, [*trail, nxt]))
    return problems


def own_fact_fields(rules: Sequence[Rule]) -> list[RuleProblem]:
    """A problem for each ``data.<name>`` a rule reads that its own fact type never carries.

    The facts the hub raises itself have one schema each (:mod:`hub.facts.own`); a rule on
    ``profile.unsubscribed`` that reads ``data.previous`` (the name an earlier release used)
    would never fire. Types some rule also raises with ``emit`` carry whatever data it gives
    and are not checked.
    """
    emitted = {a.params["type"] for r in rules for a in r.actions if a.name == "emit"}
    problems = []
    for rule in rules:
        schema = OWN_FACTS.get(rule.fact_pattern)
        if schema is None or rule.fact_pattern in emitted:
            continue
        names = [*schema.model_fields, "caused_by"]
        for path in sorted(_data_paths(rule.condition)):
            name = path.split(".")[1]
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
                hint = f"; did you mean 'data.{close[0]}'?" if close else ""
                problems.append(
                    RuleProblem(
                        rule.file,
                        rule.line,
                        1,
                        f"rule {rule.name!r}: {rule.fact_pattern} has no {path} (its data: "
                        f"{', '.join(names)}){hint}",
                    )
                )
    return problems


def _data_paths(condition: Condition) -> set[str]:
    """The ``data.*`` paths a condition compares (history conditions read other facts)."""
    if isinstance(condition, Compare):
        return {condition.path} if condition.path.startswith("data.") else set()
    if isinstance(condition, Group):
        return {p for item in condition.items for p in _data_paths(item)}
    return set()
