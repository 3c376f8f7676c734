"""The rule engine: durable_rules behind one small interface.

durable_rules consumes a posted event with the first rule that matches; analysts expect every
matching rule to fire. So each fact is *asserted* (every rule whose conditions hold fires
once on a fact) and retracted straight away, in one session that holds nothing between
facts. The engine is called from one thread per process and runs no background threads.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from durable import engine as durable_engine

from hub.conditions import evaluate, rule_to_durable, type_matches
from hub.rulefile import Rule, RuleSet

_ruleset_names = itertools.count(1)


class _Host(durable_engine.Host):
    """A durable_rules host without its dispatch and timer threads (we never post timers)."""

    def _run(self) -> None:
        return None


class RuleEngine:
    """Matches documents (fact + profile) against a rule set; returns rule indexes per doc."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._name = f"hub{next(_ruleset_names)}"
        self._fired: list[int] = []
        self._host = _Host()
        if ruleset.rules:
            self._host.set_rulesets({self._name: self._definition(ruleset.rules)})

    def _definition(self, rules: Sequence[Rule]) -> dict[str, Any]:
        definition: dict[str, Any] = {}
        for index, rule in enumerate(rules):
            definition[f"r{index}"] = {
                "all": [{"m": rule_to_durable(rule.fact_pattern, rule.condition)}],
                "run": self._recorder(index),
            }
        return definition

    def _recorder(self, index: int) -> Any:
        def run(_closure: Any) -> None:
            self._fired.append(index)

        return run

    def match(self, docs: Sequence[dict[str, Any]]) -> list[list[Rule]]:
        """For each document, the rules whose conditions hold, in rule-file order.

        A document is ``{"type", "fact": {...}, "data": {...}, "profile": {...}}``.
        """
        if not self.ruleset.rules:
            return [[] for _ in docs]
        results = []
        for n, doc in enumerate(docs):
            message = dict(doc, sid="0", id=f"d{n}")
            self._fired = []
            try:
                self._host.assert_fact(self._name, message)
            except durable_engine.MessageNotHandledException:
                results.append([])
                continue
            except durable_engine.MessageObservedException:
                # left behind by an earlier failure: clear it and assert again
                self._host.retract_fact(self._name, message)
                self._host.assert_fact(self._name, message)
            self._host.retract_fact(self._name, message)
            results.append([self.ruleset.rules[i] for i in sorted(set(self._fired))])
        return results


def reference_match(ruleset: RuleSet, doc: dict[str, Any]) -> list[Rule]:
    """The same answer as :meth:`RuleEngine.match` computed in plain Python.

    It is the yardstick of the engine's conformance tests and explains non-firing rules.
    """
    return [
        rule
        for rule in ruleset.rules
        if type_matches(rule.fact_pattern, doc["type"]) and evaluate(rule.condition, doc)
    ]
