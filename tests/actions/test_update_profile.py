"""``update_profile``: set, unset, increment with typed templates; ``profile.updated`` follows."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from hub.models import Fact
from hub.runtime import Runtime
from tests.rules.test_language import fact, post, profile, settle, use_rules


def test_update_profile_set_unset_increment_with_typed_templates_and_profile_updated(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: count
            when: {fact: order.placed}
            then:
              - update_profile:
                  set: {last_total: "{{ fact.data.total }}", label: "order {{ fact.data.total }}"}
                  unset: [prospect]
                  increment: {revenue: "{{ fact.data.total }}", orders: 1}
          - name: big-spender
            when:
              fact: profile.updated
              all: [data.changed: {contains: revenue}, profile.fields.revenue: {gte: 100}]
            then: [{update_profile: {add_tags: [big-spender]}}]
        """,
    )
    post(
        hub_runtime,
        {
            **fact("order.placed", total=60),
            "profile": {"email": "ann@example.com", "fields": {"prospect": True}},
        },
    )
    settle(hub_runtime)
    p = profile(hub_runtime)
    assert p.fields == {"last_total": 60, "label": "order 60", "revenue": 60, "orders": 1}
    assert p.tags == []
    post(hub_runtime, fact("order.placed", total=45.5))
    settle(hub_runtime)
    p = profile(hub_runtime)
    assert p.fields["revenue"] == 105.5 and p.fields["orders"] == 2
    assert p.tags == ["big-spender"]
    with hub_runtime.db.session() as s:
        updated = s.scalars(select(Fact).where(Fact.type == "profile.updated")).all()
        # only the profile.updated a rule fires on is stored (revenue 60 < 100: not wanted)
        assert [f.data["changed"] for f in updated] == [
            ["label", "last_total", "orders", "revenue"]
        ]
        assert {f.source for f in updated} == {"hub"}
