"""What a rule set is once read: rules, their actions and the version firings record.

Plain frozen data, built by :mod:`hub.rules.reader` and read by the engine, the evaluator and
the analysts' tools; nothing here parses or matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hub.rules.conditions import Group
from hub.rules.document import template_context
from hub.templates import render_value
from hub.times import parse_time


@dataclass(frozen=True)
class ActionCall:
    """One action of a rule, with its validated parameters."""

    name: str
    params: dict[str, Any]
    line: int
    after: int | None = None  # seconds after the fact
    at: str | None = None  # a template giving a date/time
    unless: Group | None = None  # checked again when the delay ends

    @property
    def delayed(self) -> bool:
        """Whether the action waits (``after`` or ``at``): it then runs as a follow-up job."""
        return self.after is not None or self.at is not None

    def due_at(self, doc: dict[str, Any], now: datetime) -> datetime | None:
        """When the action is due for ``doc`` (None: now); ``at`` dates in the past run now.

        Raises:
            ValueError: ``at`` rendered to something that is not a date (bad data in a fact).
        """
        if self.after is not None:
            return now + timedelta(seconds=self.after)
        if self.at is None:
            return None
        when = parse_time(render_value(self.at, template_context(doc)))
        if when is None:
            raise ValueError(f"'at' of {self.name} did not give a date: {self.at!r}")
        return max(when, now)


@dataclass(frozen=True)
class Rule:
    """One rule: the facts it triggers on, its condition, its actions and its limits."""

    name: str
    file: str
    line: int
    fact_pattern: str
    condition: Group
    actions: tuple[ActionCall, ...]
    description: str = ""
    priority: int = 0
    once_per_profile: bool = False
    at_most: tuple[int, int] | None = None  # (count, seconds)
    stop: bool = False  # lower-priority rules do not fire on a fact this rule fired on


@dataclass(frozen=True)
class RuleSet:
    """Every rule of a rule directory, with the content hash that firings record."""

    rules: tuple[Rule, ...]
    version: str
    files: tuple[str, ...] = field(default=())

    def by_name(self, name: str) -> Rule:
        """The rule called ``name``; StopIteration if the set has none."""
        return next(r for r in self.rules if r.name == name)
