"""One job runs the actions of a batch: each under its own key, a failing one retried alone."""

from __future__ import annotations

import time
from pathlib import Path

from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from hub.actions import ACTIONS
from hub.actions.batch import run_actions
from hub.models import ActionRun, Fact, Profile
from hub.queue import ACTIONS_QUEUE, queue
from hub.runtime import Runtime
from hub.worker.dispatch import job_key
from hub.worker.drain import drain_pending
from tests.rules.test_language import fact, post, use_rules

QUIET = """
rules:
  - name: unrelated
    when: {fact: never.happens}
    then: [{update_profile: {add_tags: [never]}}]
"""
UPDATE = ACTIONS["update_profile"].job_path


def test_one_failing_action_is_retried_alone_while_the_others_run(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(hub_runtime, rules_dir, QUIET)
    (fact_id,) = post(hub_runtime, fact("page.viewed", count="many"))
    drain_pending()
    with hub_runtime.db.session() as s:
        profile_id = s.get(Fact, fact_id).profile_id
    keys = [job_key(fact_id, "batch", i) for i in range(3)]
    items = [
        (UPDATE, keys[0], fact_id, profile_id, "batch", {"increment": {"a": 1}}),
        # bad data: the count is not a number
        (
            UPDATE,
            keys[1],
            fact_id,
            profile_id,
            "batch",
            {"increment": {"b": "{{ fact.data.count }}"}},
        ),
        (UPDATE, keys[2], fact_id, profile_id, "batch", {"increment": {"c": 1}}),
    ]
    before = time.time()
    assert run_actions(ACTIONS_QUEUE, items) == {"ran": 2, "retrying": 1}
    with hub_runtime.db.session() as s:
        assert s.get(Profile, profile_id).fields == {"a": 1, "c": 1}
        assert sorted(s.scalars(select(ActionRun.job_id))) == sorted([keys[0], keys[2]])
    retry = Job.fetch(keys[1], connection=hub_runtime.redis)  # under the action's own key
    assert retry.func_name == UPDATE and retry.kwargs["job_key"] == keys[1]
    assert retry.get_status() == "scheduled" and retry.retries_left == 4
    registry = ScheduledJobRegistry(queue=queue(ACTIONS_QUEUE, hub_runtime.redis))
    assert registry.get_job_ids() == [keys[1]]
    due = registry.get_scheduled_time(keys[1]).timestamp()
    assert before + 5 <= due <= time.time() + 15  # after its first backoff interval
    # the batch job run again: the actions that ran are no-ops under their keys
    assert run_actions(ACTIONS_QUEUE, items) == {"ran": 2, "retrying": 1}
    with hub_runtime.db.session() as s:
        assert s.get(Profile, profile_id).fields == {"a": 1, "c": 1}
