"""``create_profile``: upsert a profile a fact names besides its own."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from hub.models import Profile
from hub.runtime import Runtime
from tests.rules.test_language import fact, post, profile, settle, use_rules


def test_create_profile_upserts_by_email(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: refer
            when: {fact: form.submitted}
            then:
              - create_profile:
                  email: "{{ fact.data.friend }}"
                  fields: {referred_by: "{{ profile.email }}"}
          - name: welcome-friend
            when: {fact: profile.created, all: [profile.fields.referred_by: {exists: true}]}
            then: [{update_profile: {add_tags: [referred]}}]
        """,
    )
    post(hub_runtime, fact("form.submitted", friend="Bo@Example.com"))
    settle(hub_runtime)
    friend = profile(hub_runtime, "bo@example.com")
    assert friend.fields == {"referred_by": "ann@example.com"} and friend.tags == ["referred"]
    post(hub_runtime, fact("form.submitted", email="cy@example.com", friend="bo@example.com"))
    settle(hub_runtime)
    friend = profile(hub_runtime, "bo@example.com")
    assert friend.fields == {"referred_by": "cy@example.com"}  # upsert: found, fields updated
    with hub_runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Profile)) == 3
