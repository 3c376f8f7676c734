"""``emit``: a fact raised by a rule, with its cause; a cycle of rules stops at the bound."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from hub.actions.hub_facts import MAX_CHAIN_DEPTH
from hub.models import ActionRun, Fact
from hub.runtime import Runtime
from tests.rules.test_language import fact, post, profile, settle, use_rules


def test_emit_chains_and_a_cycle_stops_at_the_bound(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: start
            when: {fact: order.placed}
            then: [{emit: {type: order.counted, data: {total: "{{ fact.data.total }}"}}}]
          - name: counted
            when: {fact: order.counted, all: [data.total: {gte: 10}]}
            then: [{update_profile: {increment: {n: 1}}}]
          - name: runaway
            when: {fact: profile.updated}
            then: [{update_profile: {increment: {n: 1}}}]
        """,
    )
    post(hub_runtime, fact("order.placed", total=12))
    settle(hub_runtime, rounds=40)
    with hub_runtime.db.session() as s:
        counted = s.scalar(select(Fact).where(Fact.type == "order.counted"))
        assert counted.data == {"total": 12, "caused_by": {"fact": 1, "rule": "start", "depth": 1}}
        stops = s.scalars(select(ActionRun).where(ActionRun.action == "chain-stopped")).all()
        depths = [
            f.data["caused_by"]["depth"]
            for f in s.scalars(select(Fact).where(Fact.type == "profile.updated"))
        ]
    assert len(stops) == 1
    assert max(depths) == MAX_CHAIN_DEPTH
    # one increment on order.counted (depth 1), one per profile.updated of depth 2..8
    assert profile(hub_runtime).fields["n"] == MAX_CHAIN_DEPTH
