"""The past of a profile, for history conditions and rule limits.

History conditions ("had an ``order.placed`` with total >= 50 in the last 30 days, at least
twice") and limits (``once_per_profile``, ``at_most: 1 per 7d``) cannot be matched by
durable_rules: they are evaluated in Python after the engine, against the facts and firings
stored for the profile. :class:`DbContext` reads them for one batch, once per profile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from hub.db import one_of
from hub.models import Fact, RuleFiring
from hub.rules.conditions import type_matches
from hub.rules.document import history_document
from hub.rules.model import Rule
from hub.times import parse_time, utcnow

HISTORY_LIMIT = 5000  # facts per profile looked at by one history condition


@dataclass
class DbContext:
    """History and firings read from the database, cached per profile for one batch."""

    session: Session
    now: datetime = field(default_factory=utcnow)
    _facts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    _firings: dict[int, list[tuple[str, datetime]]] = field(default_factory=dict)
    _recorded: dict[int, list[tuple[str, datetime]]] = field(default_factory=dict)
    batch_profiles: set[int] = field(default_factory=set)
    # What the rule set can ask for; None reads everything. A profile's history of other
    # fact types and its firings of rules without limits are never read.
    history_types: Sequence[str] | None = None
    limited_rules: set[str] | None = None
    # The facts being evaluated, ``(profile id, fact row)``: not yet linked to their profiles
    # in the database, yet part of their history for the later facts of the batch. Made into
    # history documents only if a history condition asks (most rule sets have none).
    batch_facts: Sequence[tuple[int, Any]] = ()

    def _load_facts(self, profile_ids: set[int]) -> None:
        """Read the recent facts of several profiles in one query (a batch asks for many)."""
        recent = (
            select(
                Fact.profile_id,
                Fact.id,
                Fact.type,
                Fact.source,
                Fact.source_id,
                Fact.occurred_at,
                Fact.data,
                func.row_number()
                .over(partition_by=Fact.profile_id, order_by=Fact.occurred_at.desc())
                .label("n"),
            )
            .where(
                one_of(self.session, Fact.profile_id, profile_ids),
                *_type_filter(self.history_types),
            )
            .subquery()
        )
        rows = self.session.execute(
            select(recent)
            .where(recent.c.n <= HISTORY_LIMIT)
            .order_by(recent.c.profile_id, recent.c.occurred_at.desc())
        )
        for pid in profile_ids:
            self._facts[pid] = []
        in_batch = {fact.id for _pid, fact in self.batch_facts}
        for pid, fid, ftype, source, source_id, occurred_at, data, _n in rows:
            if fid not in in_batch:
                self._facts[pid].append(
                    history_document(fid, ftype, source, source_id, occurred_at, data)
                )
        for pid, f in self.batch_facts:
            if pid in profile_ids and _wanted(f.type, self.history_types):
                self._facts[pid].append(
                    history_document(f.id, f.type, f.source, f.source_id, f.occurred_at, f.data)
                )

    def facts(self, doc: dict[str, Any], since: datetime | None) -> list[dict[str, Any]]:
        """The profile's facts (history documents) since ``since``, this batch's earlier ones too.

        The first question about a profile of the batch reads the facts of every profile of the
        batch not read yet, in one query. A document without a profile id has no history.
        """
        profile_id = (doc.get("profile") or {}).get("id")
        if profile_id is None:
            return []
        if profile_id not in self._facts:
            wanted = {p for p in self.batch_profiles if p not in self._facts}
            self._load_facts(wanted | {profile_id})
        docs = self._facts[profile_id]
        if since is None:
            return docs
        return [d for d in docs if (parse_time(d["_at"]) or since) >= since]

    def firings(self, profile_id: int) -> list[tuple[str, datetime]]:
        """The profile's rule firings, ``(rule name, fired at)``: stored ones and this batch's."""
        if profile_id not in self._firings:
            wanted = {p for p in self.batch_profiles if p not in self._firings}
            self._load_firings(wanted | {profile_id})
        return self._firings[profile_id] + self._recorded.get(profile_id, [])

    def _load_firings(self, profile_ids: set[int]) -> None:
        """Read the firings of several profiles in one query (limits ask for each profile)."""
        for pid in profile_ids:
            self._firings[pid] = []
        query = select(RuleFiring.profile_id, RuleFiring.rule_name, RuleFiring.fired_at).where(
            one_of(self.session, RuleFiring.profile_id, profile_ids)
        )
        if self.limited_rules is not None:
            query = query.where(one_of(self.session, RuleFiring.rule_name, self.limited_rules))
        rows = self.session.execute(query)
        for firing_profile, name, at in rows:
            if firing_profile is not None:  # asked for by profile: never None
                self._firings[firing_profile].append((name, at))

    def record(self, profile_id: int, rule_name: str, at: datetime) -> None:
        """A firing of this batch counts for the next fact of the same profile.

        Kept apart from what the database holds, so recording costs no query: only rules with
        limits ever read a profile's firings.
        """
        self._recorded.setdefault(profile_id, []).append((rule_name, at))


def _wanted(fact_type: str, patterns: Sequence[str] | None) -> bool:
    return patterns is None or any(type_matches(p, fact_type) for p in patterns)


def _type_filter(patterns: Sequence[str] | None) -> list[Any]:
    """SQL for "the type matches one of these globs" (``*`` and ``?``); [] when it cannot say."""
    if patterns is None or any("[" in p for p in patterns):
        return []
    clauses: list[ColumnElement[bool]] = []
    for pattern in patterns:
        if "*" in pattern or "?" in pattern:
            like = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(Fact.type.like(like.replace("*", "%").replace("?", "_"), escape="\\"))
        else:
            clauses.append(Fact.type == pattern)
    return [or_(*clauses)] if clauses else [false()]


def limit_reason(rule: Rule, firings: Sequence[tuple[str, datetime]], now: datetime) -> str | None:
    """Why ``rule`` may not fire again for a profile with these firings, or None."""
    mine = [at for name, at in firings if name == rule.name]
    if rule.once_per_profile and mine:
        return f"once_per_profile: fired already at {min(mine).isoformat()}"
    if rule.at_most:
        count, seconds = rule.at_most
        recent = [at for at in mine if at > now - timedelta(seconds=seconds)]
        if len(recent) >= count:
            return f"at_most {count} per {seconds}s: fired {len(recent)} times in that window"
    return None


def apply_limits(
    rules: Sequence[Rule],
    profile_id: int,
    firings: Callable[[int], Sequence[tuple[str, datetime]]],
    now: datetime,
) -> tuple[list[Rule], dict[str, str]]:
    """The rules that may fire, and for the others why not."""
    allowed, held = [], {}
    for rule in rules:
        reason = None
        if rule.once_per_profile or rule.at_most:
            reason = limit_reason(rule, firings(profile_id), now)
        if reason:
            held[rule.name] = reason
        else:
            allowed.append(rule)
    return allowed, held
