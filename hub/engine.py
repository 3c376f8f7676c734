"""The rule engine: durable_rules behind one small interface.

durable_rules consumes a posted event with the first rule that matches; analysts expect every
matching rule to fire. So each fact is *asserted* (every rule whose conditions hold fires
once on a fact) and retracted straight away, in one session that holds nothing between
facts. The engine is called from one thread per process and runs no background threads.

durable_rules matches the trigger and every condition it can express; what it cannot (dates
relative to now, history, a few texts its regex dialect cannot write) is a *residual*
evaluated in Python on the documents durable matched (see docs/rules.md, "Who evaluates
what").
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from durable import engine as durable_engine

from hub.conditions import (
    Context,
    Group,
    History,
    evaluate,
    type_matches,
)
from hub.durable_json import PathIndex, rule_to_durable
from hub.exceptions import RuleFileError
from hub.rulefile import Rule, RuleSet, load_rules, rule_files

log = logging.getLogger(__name__)
_ruleset_names = itertools.count(1)


class _Host(durable_engine.Host):
    """A durable_rules host without its dispatch and timer threads (we never post timers)."""

    def _run(self) -> None:
        return None


class RuleEngine:
    """Matches documents (fact + profile) against a rule set; returns the rules per doc."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.fingerprint: str | None = None
        self._name = f"hub{next(_ruleset_names)}"
        self._fired: list[int] = []
        self._host = _Host()
        self.paths = PathIndex()
        self.residuals: list[Group | None] = []
        self.definitions: dict[str, Any] = {}
        for index, rule in enumerate(ruleset.rules):
            expr, residual = rule_to_durable(rule.fact_pattern, rule.condition, self.paths)
            self.residuals.append(residual)
            self.definitions[f"r{index}"] = expr
        self.history_patterns = sorted({h.fact for rule in ruleset.rules for h in _histories(rule)})
        if ruleset.rules:
            try:
                self._host.set_rulesets({self._name: self.durable_definition()})
            except Exception:  # noqa: BLE001 - durable refuses some large expressions
                self._degrade()
                self._host = _Host()
                self._host.set_rulesets({self._name: self.durable_definition()})

    def _degrade(self) -> None:
        """Rules durable refuses keep only their trigger there; Python checks the rest."""
        for index, rule in enumerate(self.ruleset.rules):
            key = f"r{index}"
            probe = _Host()
            try:
                probe.set_rulesets(
                    {
                        f"probe{next(_ruleset_names)}": {
                            key: {
                                "all": [{"m": _copy(self.definitions[key])}],
                                "run": lambda _c: None,
                            }
                        }
                    }
                )
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
        """A fresh durable_rules ruleset (``set_rulesets`` consumes the one it is given)."""
        return {
            key: {"all": [{"m": _copy(expr)}], "run": self._recorder(int(key[1:]))}
            for key, expr in self.definitions.items()
        }

    def _recorder(self, index: int) -> Any:
        def run(_closure: Any) -> None:
            self._fired.append(index)

        return run

    def message(self, doc: dict[str, Any], n: int) -> dict[str, Any]:
        """The document as durable sees it: with ``_t``, the kinds of the compared paths."""
        return dict(doc, _t=self.paths.kinds(doc), sid="0", id=f"d{n}")

    def durable_fired(self, docs: Sequence[dict[str, Any]]) -> list[list[int]]:
        """Indexes of the rules durable_rules fires per document (before residuals)."""
        if not self.ruleset.rules:
            return [[] for _ in docs]
        results = []
        for n, doc in enumerate(docs):
            message = self.message(doc, n)
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
            results.append(sorted(set(self._fired)))
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


def directory_fingerprint(path: Path) -> str:
    """Cheap change detection for a rule directory: names, sizes and times of its files."""
    digest = hashlib.sha256()
    templates = path / "templates" if path.is_dir() else path.parent / "templates"
    files = rule_files(path) if path.exists() else []
    files += sorted(templates.glob("*")) if templates.is_dir() else []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        digest.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def refresh(rt: Any, rules_dir: Path | None = None) -> RuleFileError | None:
    """Reload the rules of a running process if their files changed and are valid.

    An invalid change leaves the last valid rule set running; the problems are logged, kept
    in Redis (``<prefix>:rules:error``, shown by ``POST /api/v1/rules/reload``) and returned.
    """
    path = rules_dir or rt.settings.rules_dir
    current = rt.engine
    fingerprint = directory_fingerprint(path)
    if fingerprint == current.fingerprint:
        return None
    key = f"{rt.settings.redis_prefix}:rules:error"
    try:
        ruleset = load_rules(path)
    except RuleFileError as exc:
        current.fingerprint = fingerprint  # report once per change, not on every batch
        log.error(
            "rule files changed but are invalid; still running version %s:\n%s",
            current.ruleset.version,
            exc,
        )
        rt.redis.set(key, str(exc))
        return exc
    if ruleset.version != current.ruleset.version:
        engine = RuleEngine(ruleset)
        engine.fingerprint = fingerprint
        rt.set_engine(engine)
        log.info("rules reloaded: version %s (%d rules)", ruleset.version, len(ruleset.rules))
    else:
        current.fingerprint = fingerprint
    rt.redis.delete(key)
    return None
