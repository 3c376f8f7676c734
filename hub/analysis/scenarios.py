"""``hub rules test``: scenario files that analysts write, run with a simulated clock.

A scenario gives a starting profile, a timeline of facts (each at an offset such as ``0m`` or
``2d``) and the actions expected (with their times) and not expected. The runner feeds the
facts to the real engine (durable_rules and the Python residuals), keeps the profile, its
history and its firings in memory, runs follow-ups when the simulated clock reaches them
(re-checking ``unless``), raises the hub's own facts (``profile.updated``, ``mail.sent``, ...)
and applies the same action logic as the jobs: nothing is stored, nothing is sent.

File format (``rules/tests/*.yaml``)::

    scenarios:
      - name: a big order is thanked at once
        profile: {email: ann@example.com, fields: {first_name: Ann}}
        timeline:
          - {at: 0m, fact: {type: order.placed, data: {total: 80}}}
        expect:
          - {rule: thank-you-for-your-order, action: send_mail, at: 0m}
        expect_not:
          - {action: webhook}
        expect_profile: {tags: [buyer, shopper]}
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from hub.actions import ACTIONS
from hub.actions.hub_facts import MAX_CHAIN_DEPTH, chain_depth
from hub.rules.actions import ActionRegistry
from hub.rules.conditions import StaticContext, describe, evaluate, parse_duration, type_matches
from hub.rules.document import document, template_context
from hub.rules.engine import RuleEngine
from hub.rules.history import limit_reason
from hub.rules.model import ActionCall, Rule

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday morning


@dataclass
class Outcome:
    """One action as the simulated hub ran it."""

    rule: str
    action: str
    at: timedelta
    result: str  # "done", "skipped: ...", "refused: ..."
    detail: str = ""

    @property
    def done(self) -> bool:
        """Whether the action took effect (was neither skipped nor refused)."""
        return self.result == "done"

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{_fmt(self.at)} {self.rule} -> {self.action}: {self.result}{extra}"


@dataclass
class ScenarioResult:
    """What running one scenario gave: the outcomes, the failed expectations, the final profile.

    A scenario that cannot be read or run has one failure saying why, and no outcomes.
    """

    name: str
    file: str
    line: int
    outcomes: list[Outcome]
    failures: list[str]
    profile: dict[str, Any]

    @property
    def passed(self) -> bool:
        """True if every expectation of the scenario held."""
        return not self.failures


@dataclass(order=True)
class _Pending:
    due: datetime
    seq: int
    rule: Rule = field(compare=False)
    action: ActionCall = field(compare=False)
    doc: dict[str, Any] = field(compare=False)


class Simulation:
    """The hub in memory for one profile, driven by a simulated clock."""

    def __init__(
        self,
        engine: RuleEngine,
        profile: dict[str, Any],
        start: datetime,
        actions: ActionRegistry = ACTIONS,
    ) -> None:
        self.engine = engine
        self.actions = actions
        self.start = start
        self.now = start
        self.profile = {
            "id": 1,
            "email": profile.get("email", "contact@example.com"),
            "status": profile.get("status", "subscribed"),
            "fields": dict(profile.get("fields") or {}),
            "tags": list(profile.get("tags") or []),
            "external_ids": dict(profile.get("external_ids") or {}),
            "created_at": str(profile.get("created_at") or start.isoformat()),
            "updated_at": start.isoformat(),
        }
        self.history: list[dict[str, Any]] = []
        self.firings: list[tuple[str, datetime]] = []
        self.pending: list[_Pending] = []
        self.outcomes: list[Outcome] = []
        self.log: list[str] = []
        self._ids = itertools.count(1)

    def ctx(self) -> StaticContext:
        """The condition context at the simulated time, with the facts so far as history."""
        return StaticContext(now=self.now, history=lambda _doc, _since: list(self.history))

    def run(self, timeline: list[tuple[timedelta, dict[str, Any]]], until: timedelta) -> None:
        """Play ``timeline`` (offsets from the start) in order, then run the clock on to ``until``.

        An entry with ``profile`` and no ``fact`` changes the profile instead of adding a fact.
        """
        for offset, entry in sorted(timeline, key=lambda e: e[0]):
            self.advance(self.start + offset)
            if "profile" in entry and "fact" not in entry:
                self.profile.update(entry["profile"])
                continue
            fact = entry["fact"]
            self.fact(fact["type"], dict(fact.get("data") or {}), depth=0)
        self.advance(self.start + until)

    def advance(self, to: datetime) -> None:
        """Move the clock to ``to``, running the follow-ups due by then, in order."""
        while self.pending and self.pending[0].due <= to:
            item = heapq.heappop(self.pending)
            self.now = item.due
            self.execute(item.rule, item.action, item.doc, followup=True)
        self.now = max(self.now, to)

    def fact(self, fact_type: str, data: dict[str, Any], depth: int) -> None:
        """Match one fact now; run the actions of the rules it fires, or schedule their follow-ups.

        Rule limits are applied as the worker applies them.
        """
        fact_id = next(self._ids)
        doc = document(
            {
                "id": fact_id,
                "type": fact_type,
                "source": "scenario",
                "occurred_at": self.now.isoformat(),
                "data": data,
            },
            _copy(self.profile),
        )
        self.log.append(f"{_fmt(self.now - self.start)} fact {fact_type} {data}")
        (rules,) = self.engine.match([doc], self.ctx())
        self.history.append({k: doc[k] for k in ("type", "fact", "data")})
        for rule in rules:
            reason = limit_reason(rule, self.firings, self.now)
            if reason:
                self.log.append(f"  {rule.name} held back: {reason}")
                continue
            self.firings.append((rule.name, self.now))
            for action in rule.actions:
                run_at = action.due_at(doc, self.now)
                if run_at is None or run_at <= self.now:
                    self.execute(rule, action, doc)
                else:
                    heapq.heappush(
                        self.pending, _Pending(run_at, next(self._ids), rule, action, doc)
                    )

    def execute(
        self, rule: Rule, action: ActionCall, doc: dict[str, Any], followup: bool = False
    ) -> None:
        """Run one action as its job would and record the outcome; a ``followup`` checks ``unless``.

        The facts the action raises are matched in turn, up to the hub's chain depth limit.
        """
        at = self.now - self.start
        if followup and action.unless is not None:
            current = dict(doc, profile=_copy(self.profile))
            ctx = self.ctx()
            if evaluate(action.unless, current, ctx):
                held = next(
                    describe(c, current, ctx)
                    for c in action.unless.items
                    if evaluate(c, current, ctx)
                )
                self.outcomes.append(
                    Outcome(rule.name, action.name, at, "skipped", f"unless {held}")
                )
                return
        context = template_context(dict(doc, profile=_copy(self.profile)))
        spec = self.actions[action.name]
        shown = spec.show(self.profile, spec.params.model_validate(action.params), context)
        self.outcomes.append(Outcome(rule.name, action.name, at, shown.result, shown.detail))
        if shown.result != "done":
            return
        depth = chain_depth(doc["data"]) + 1
        for raised in shown.raised:
            fact_type = raised.type
            data = {
                **raised.data,
                "caused_by": {"fact": doc["fact"]["id"], "rule": rule.name, "depth": depth},
            }
            if depth > MAX_CHAIN_DEPTH:
                self.outcomes.append(
                    Outcome(rule.name, "chain", at, "stopped", f"{fact_type} at depth {depth}")
                )
                continue
            probe = document(
                {"type": fact_type, "source": "hub", "data": data}, _copy(self.profile)
            )
            if raised.explicit or self.engine.wants(probe):
                self.fact(fact_type, data, depth)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _fmt(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"+{seconds // size}{unit}"
    return f"+{seconds}s"


def _offset(value: Any) -> timedelta:
    return timedelta(seconds=parse_duration(value)) if value not in (0, "0") else timedelta()


def _matches(outcome: Outcome, want: dict[str, Any]) -> bool:
    if want.get("rule") and outcome.rule != want["rule"]:
        return False
    if want.get("action") and outcome.action != want["action"]:
        return False
    if "at" in want and outcome.at != _offset(want["at"]):
        return False
    return outcome.result == want.get("result", "done")


def run_scenario(engine: RuleEngine, spec: dict[str, Any], file: str, line: int) -> ScenarioResult:
    """Run one scenario and check its expectations."""
    start = spec.get("start")
    start_at = datetime.fromisoformat(str(start).replace("Z", "+00:00")) if start else DEFAULT_START
    if start_at.tzinfo is None:
        start_at = start_at.replace(tzinfo=UTC)
    sim = Simulation(engine, spec.get("profile") or {}, start_at)
    timeline = [(_offset(e.get("at", 0)), e) for e in spec.get("timeline") or []]
    last = max([t for t, _ in timeline] + [timedelta()])
    horizon = last + _offset(spec.get("run_for", "30d"))
    for want in spec.get("expect") or []:
        if "at" in want:
            horizon = max(horizon, _offset(want["at"]) + timedelta(seconds=1))
    sim.run(timeline, horizon)
    failures = []
    for want in spec.get("expect") or []:
        if not any(_matches(o, want) for o in sim.outcomes):
            failures.append(f"expected {want} but it did not happen")
    for unwanted in spec.get("expect_not") or []:
        hits = [o for o in sim.outcomes if _matches(o, unwanted)]
        if hits:
            failures.append(f"expected no {unwanted} but got: {hits[0]}")
    for key, value in (spec.get("expect_profile") or {}).items():
        actual = sim.profile.get(key)
        if key == "tags" and isinstance(value, list):
            ok = sorted(actual or []) == sorted(value)
        elif isinstance(value, dict):
            ok = all((actual or {}).get(k) == v for k, v in value.items())
        else:
            ok = actual == value
        if not ok:
            failures.append(f"expected profile {key} {value!r}, got {actual!r}")
    return ScenarioResult(spec.get("name", "?"), file, line, sim.outcomes, failures, sim.profile)


class _LineLoader(yaml.SafeLoader):
    pass


def _mapping_with_line(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    value = loader.construct_mapping(node, deep=True)
    value["__line__"] = node.start_mark.line + 1
    return value


_LineLoader.add_constructor("tag:yaml.org,2002:map", _mapping_with_line)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def scenario_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def run_files(engine: RuleEngine, path: Path) -> list[ScenarioResult]:
    """Every scenario of every file under ``path``; a malformed one is a failed result."""
    results = []
    for file in scenario_files(path):
        try:
            doc = yaml.load(file.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506
        except yaml.YAMLError as exc:
            results.append(ScenarioResult(file.name, str(file), 1, [], [f"YAML: {exc}"], {}))
            continue
        for raw in (doc or {}).get("scenarios") or []:
            line = raw.get("__line__", 1) if isinstance(raw, dict) else 1
            spec = _strip(raw)
            try:
                results.append(run_scenario(engine, spec, str(file), line))
            except Exception as exc:  # noqa: BLE001 - a broken scenario fails, others still run
                name = spec.get("name", "?") if isinstance(spec, dict) else "?"
                results.append(
                    ScenarioResult(name, str(file), line, [], [f"{type(exc).__name__}: {exc}"], {})
                )
    return results


__all__ = ["Outcome", "ScenarioResult", "Simulation", "run_files", "run_scenario", "type_matches"]
