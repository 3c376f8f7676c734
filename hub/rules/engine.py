"""The rule engine: durable_rules behind one small interface.

durable_rules consumes a posted event with the first rule that matches; analysts expect every
matching rule to fire. So each fact is *asserted* (every rule whose conditions hold fires
once on a fact) and retracted straight away, in one session that holds nothing between
facts. The engine is called from one thread per process and runs no background threads.

The hub drives durable_rules' C engine (``durable_rules_engine``) itself, with the calls
durable's own Python host makes (create, assert, start and complete actions, retract), but
without that host's per-firing machinery (a closure, the state and message parsed from JSON
and written back, a callback chain): it only needs to know which rules fired, and that
machinery made matching six times slower (docs/benchmarks.md).

durable_rules matches the trigger and every condition it can express; what it cannot (dates
relative to now, history, a few texts its regex dialect cannot write) is a *residual*
evaluated in Python on the documents durable matched (see docs/rules.md, "Who evaluates
what").
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from typing import Any

import durable_rules_engine as durable

from hub import jsoncodec
from hub.rules.compiler import PathIndex, rule_to_durable
from hub.rules.conditions import Context, Group, History, evaluate, type_matches
from hub.rules.model import Rule, RuleSet

log = logging.getLogger(__name__)
_ruleset_names = itertools.count(1)


class MessageObserved(Exception):
    """durable_rules holds this document already (left behind by an interrupted match)."""


class CompiledRules:
    """One durable_rules ruleset in the C engine: which rules fire on a document."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        ruleset = {key: {"all": [{"m": expr}]} for key, expr in definitions.items()}
        self.handle = durable.create_ruleset(
            f"hub{next(_ruleset_names)}", json.dumps(ruleset, ensure_ascii=False)
        )

    def __del__(self) -> None:
        """Free the C engine's ruleset when a reloaded rule set replaces this one."""
        handle = getattr(self, "handle", None)
        if handle is not None:
            try:
                durable.delete_ruleset(handle)
            except Exception:  # noqa: BLE001, S110 - at interpreter exit the module may be gone
                pass

    def fired(self, message: str) -> list[int]:
        """Assert ``message`` (JSON), collect the firing rules' indexes, retract it."""
        code, state = durable.assert_fact(self.handle, message)
        if code == 1:  # nothing matched
            return []
        if code == 2:
            raise MessageObserved(message)
        indexes = []
        try:
            action = durable.start_action_for_state(self.handle, state)
            while action:
                indexes.append(_rule_index(action[1] if isinstance(action, tuple) else action))
                action = durable.complete_and_start_action(self.handle, state)
        finally:
            durable.retract_fact(self.handle, message)
        return indexes


def _rule_index(action_message: str) -> int:
    """The rule index of a firing, from durable's ``{"r<index>": {...}}`` message."""
    if action_message.startswith('{"r'):
        return int(action_message[3 : action_message.index('"', 3)])
    return int(next(iter(json.loads(action_message)))[1:])


class RuleEngine:
    """Matches documents (fact + profile) against a rule set; returns the rules per doc."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.paths = PathIndex()
        self.residuals: list[Group | None] = []
        self.definitions: dict[str, Any] = {}
        for index, rule in enumerate(ruleset.rules):
            expr, residual = rule_to_durable(rule.fact_pattern, rule.condition, self.paths)
            self.residuals.append(residual)
            self.definitions[f"r{index}"] = expr
        self.history_patterns = sorted({h.fact for rule in ruleset.rules for h in _histories(rule)})
        self.limited_rules = {r.name for r in ruleset.rules if r.once_per_profile or r.at_most}
        self.compiled: CompiledRules | None = None
        if ruleset.rules:
            try:
                self.compiled = CompiledRules(self.definitions)
            except Exception:  # noqa: BLE001 - durable refuses some large expressions
                self._degrade()
                self.compiled = CompiledRules(self.definitions)

    def _degrade(self) -> None:
        """Rules durable refuses keep only their trigger there; Python checks the rest."""
        for index, rule in enumerate(self.ruleset.rules):
            key = f"r{index}"
            try:
                CompiledRules({key: self.definitions[key]})
            except Exception:  # noqa: BLE001
                log.warning(
                    "rule %r: durable_rules cannot hold its conditions; "
                    "they are evaluated in Python",
                    rule.name,
                )
                self.definitions[key], _ = rule_to_durable(rule.fact_pattern, Group("all", ()))
                self.residuals[index] = rule.condition

    def wants(self, doc: dict[str, Any]) -> bool:
        """Whether a fact the hub would raise itself can matter to this rule set.

        The hub raises ``profile.updated``, ``mail.sent``, ... only when a rule could fire on
        it (durable matches its trigger and conditions) or a history condition counts facts
        of its type, so the facts table does not fill with facts no rule reads.
        """
        if any(type_matches(p, doc["type"]) for p in self.history_patterns):
            return True
        return bool(self.durable_fired([doc])[0])

    def durable_definition(self) -> dict[str, Any]:
        """The durable_rules ruleset (as durable's Python API takes it), for tools and tests."""
        return {
            key: {"all": [{"m": _copy(expr)}], "run": lambda _c: None}
            for key, expr in self.definitions.items()
        }

    def message(self, doc: dict[str, Any], n: int) -> dict[str, Any]:
        """The document as durable sees it: with ``_t``, the kinds of the compared paths."""
        message = self.paths.message(doc)
        message["sid"], message["id"] = "0", f"d{n}"
        return message

    def durable_fired(self, docs: Sequence[dict[str, Any]]) -> list[list[int]]:
        """Indexes of the rules durable_rules fires per document (before residuals)."""
        if not self.ruleset.rules:
            return [[] for _ in docs]
        compiled = self.compiled
        assert compiled is not None
        results = []
        for n, doc in enumerate(docs):
            message = jsoncodec.dumps(self.message(doc, n))
            try:
                fired = compiled.fired(message)
            except MessageObserved:  # left behind by an interrupted match: clear, match again
                durable.retract_fact(compiled.handle, message)
                fired = compiled.fired(message)
            results.append(sorted(set(fired)))
        return results

    def match(self, docs: Sequence[dict[str, Any]], ctx: Context | None = None) -> list[list[Rule]]:
        """For each document, the rules whose conditions hold, by priority then file order.

        A document is ``{"type", "fact": {...}, "data": {...}, "profile": {...}}``; ``ctx``
        gives the clock and the profile's history for the conditions durable cannot match.
        """
        rules = self.ruleset.rules
        out = []
        for doc, fired in zip(docs, self.durable_fired(docs), strict=True):
            hits = [
                rules[i]
                for i in fired
                if self.residuals[i] is None or evaluate(self.residuals[i], doc, ctx)  # type: ignore[arg-type]
            ]
            out.append(order_by_priority(hits))
        return out


def _histories(rule: Rule) -> list[History]:
    found: list[History] = []

    def walk(cond: Any) -> None:
        if isinstance(cond, History):
            found.append(cond)
            if cond.where is not None:
                walk(cond.where)
        elif isinstance(cond, Group):
            for item in cond.items:
                walk(item)

    walk(rule.condition)
    for action in rule.actions:
        if action.unless is not None:
            walk(action.unless)
    return found


def order_by_priority(rules: Sequence[Rule]) -> list[Rule]:
    """Highest priority first (file order among equals); a ``stop`` rule ends the list."""
    ranked = sorted(rules, key=lambda r: -r.priority)
    out = []
    for rule in ranked:
        out.append(rule)
        if rule.stop:
            break
    return out


def reference_match(
    ruleset: RuleSet, doc: dict[str, Any], ctx: Context | None = None
) -> list[Rule]:
    """The same answer as :meth:`RuleEngine.match` computed in plain Python.

    It is the yardstick of the engine's conformance tests and explains non-firing rules.
    """
    return order_by_priority(
        [
            rule
            for rule in ruleset.rules
            if type_matches(rule.fact_pattern, doc["type"]) and evaluate(rule.condition, doc, ctx)
        ]
    )


def _copy(expr: Any) -> Any:
    if isinstance(expr, dict):
        return {k: _copy(v) for k, v in expr.items()}
    if isinstance(expr, list):
        return [_copy(v) for v in expr]
    return expr
