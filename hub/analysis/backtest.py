"""Back-test: replay stored facts against a (changed) rule set, with no side effect.

For each rule it reports how often it fired on those facts (recorded firings, whatever rule
set version was running then) and how often it *would* fire with the given rules, with
example facts for each difference. Facts are replayed in order with the clock set to each
fact's time, so ``within: 7d`` and history conditions look at the past as it was then.
Profiles are read as they are now (their past states are not stored), and limits
(``once_per_profile``, ``at_most``) are applied to the replayed firings only.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select

from hub.db import Database
from hub.models import Fact, Profile, RuleFiring
from hub.rules.document import fact_document
from hub.rules.engine import RuleEngine
from hub.rules.history import DbContext, limit_reason

BATCH = 500


def backtest(
    db: Database,
    engine: RuleEngine,
    since: datetime,
    *,
    examples: int = 3,
    limit: int | None = None,
) -> dict[str, Any]:
    """Replay facts that occurred since ``since``; return the per-rule report."""
    fired: dict[str, set[int]] = defaultdict(set)
    would: dict[str, set[int]] = defaultdict(set)
    replayed: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
    total = 0
    last_id = 0
    with db.session() as session:
        while True:
            facts = list(
                session.scalars(
                    select(Fact)
                    .where(
                        Fact.occurred_at >= since, Fact.id > last_id, Fact.profile_id.is_not(None)
                    )
                    .order_by(Fact.id)
                    .limit(BATCH)
                )
            )
            if not facts:
                break
            last_id = facts[-1].id
            ids = [f.id for f in facts]
            for fact_id, name in session.execute(
                select(RuleFiring.fact_id, RuleFiring.rule_name).where(RuleFiring.fact_id.in_(ids))
            ):
                fired[name].add(fact_id)
            profiles = {
                p.id: p
                for p in session.scalars(
                    select(Profile).where(Profile.id.in_({f.profile_id for f in facts}))
                )
            }
            ctx = DbContext(session)
            for fact in facts:
                if fact.profile_id is None:  # the query takes only facts with a profile
                    continue
                ctx.now = fact.occurred_at
                doc = fact_document(fact, profiles.get(fact.profile_id))
                (rules,) = engine.match([doc], ctx)
                for rule in rules:
                    if limit_reason(rule, replayed[fact.profile_id], fact.occurred_at):
                        continue
                    replayed[fact.profile_id].append((rule.name, fact.occurred_at))
                    would[rule.name].add(fact.id)
                total += 1
                if limit is not None and total >= limit:
                    break
            if limit is not None and total >= limit:
                break
            session.expunge_all()
        session.rollback()
    names = [r.name for r in engine.ruleset.rules]
    names += sorted(set(fired) - set(names))
    in_set = {r.name for r in engine.ruleset.rules}
    report = []
    for name in names:
        new = sorted(would[name] - fired[name])
        gone = sorted(fired[name] - would[name])
        report.append(
            {
                "rule": name,
                "in_rule_set": name in in_set,
                "fired": len(fired[name]),
                "would_fire": len(would[name]),
                "newly_firing": len(new),
                "no_longer_firing": len(gone),
                "examples": {
                    "would_fire": sorted(would[name])[:examples],
                    "newly_firing": new[:examples],
                    "no_longer_firing": gone[:examples],
                },
            }
        )
    return {
        "since": since.isoformat(),
        "facts": total,
        "ruleset_version": engine.ruleset.version,
        "rules": report,
    }
