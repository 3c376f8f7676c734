"""The action registry's types: the job path RQ stores, and how a scenario shows an action."""

from __future__ import annotations

from typing import Any

import pytest
from rq.utils import import_attribute

from hub.actions import ACTIONS
from hub.rules.actions import Shown, show_rendered


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_job_path_imports_the_job(name: str) -> None:
    spec = ACTIONS[name]
    assert spec.job_path.startswith("hub.actions.")
    assert import_attribute(spec.job_path) is spec.job  # what RQ does when it runs the job


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        (
            {"email": "{{ fact.data.friend }}", "fields": {"by": "{{ profile.email }}"}},
            "{'email': 'bo@example.com', 'external_ids': {}, 'fields': {'by': 'ann@example.com'}}",
        ),
        (
            {"external_ids": {"shop": "{{ fact.data.friend_id }}"}},
            "{'external_ids': {'shop': 's-42'}, 'fields': {}}",
        ),
    ],
)
def test_show_rendered_gives_the_rendered_parameters(params: dict[str, Any], detail: str) -> None:
    spec = ACTIONS["create_profile"]
    profile = {"email": "ann@example.com", "fields": {}}
    context = {
        "fact": {"data": {"friend": "bo@example.com", "friend_id": "s-42"}},
        "profile": profile,
    }
    shown = show_rendered(dict(profile), spec.params.model_validate(params), context)
    assert shown == Shown("done", detail)
    assert spec.show is show_rendered
