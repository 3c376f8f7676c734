"""Planning and enqueueing action jobs: deterministic ids, batches per queue, follow-ups alone."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from rq.registry import ScheduledJobRegistry

from hub.actions import ACTIONS
from hub.queue import ACTIONS_QUEUE, MAIL_QUEUE, queue
from hub.rules.model import ActionCall
from hub.runtime import Runtime
from hub.worker.dispatch import ACTIONS_PER_JOB, Planned, enqueue, job_key, plan_jobs

TAG = ActionCall(name="update_profile", params={"add_tags": ["x"]}, line=1)
MAIL = ActionCall(name="send_mail", params={"template": "thank-you", "subject": "Hi"}, line=2)
LATER = ActionCall(name="update_profile", params={"add_tags": ["later"]}, line=3, after=3600)
RUN_AT = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def planned(action: ActionCall, fact_id: int, run_at: Any = None) -> Planned:
    key = job_key(fact_id, "rule", action.line)
    return Planned(action, key, fact_id, 7, "rule", run_at, {"job_id": key})


def firings() -> list[Planned]:
    return [
        *[planned(TAG, i) for i in range(1, 2 * ACTIONS_PER_JOB + 51)],
        *[planned(MAIL, i) for i in range(1, 4)],
        planned(LATER, 1, RUN_AT),
    ]


def test_job_key_is_the_same_for_the_same_action_in_any_process() -> None:
    key = job_key(12, "welcome", 0)
    assert key == job_key(12, "welcome", 0)
    assert (
        len({key, job_key(13, "welcome", 0), job_key(12, "other", 0), job_key(12, "welcome", 1)})
        == 4
    )
    assert key.startswith("act-12-") and key.endswith("-0")
    other_process = subprocess.run(
        [
            sys.executable,
            "-c",
            "from hub.worker.dispatch import job_key; print(job_key(12, 'welcome', 0))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert other_process.stdout.strip() == key
    assert len(job_key(10**12, "r" * 1000, 99)) <= 200  # fits the ledger's key column


def test_due_actions_go_in_batch_jobs_per_queue_and_follow_ups_alone() -> None:
    actions = firings()
    jobs = plan_jobs(ACTIONS, actions)
    now = [(name, data) for name, data, run_at in jobs if run_at is None]
    assert [(name, len(data.kwargs["items"])) for name, data in now] == [
        (ACTIONS_QUEUE, ACTIONS_PER_JOB),
        (ACTIONS_QUEUE, ACTIONS_PER_JOB),
        (ACTIONS_QUEUE, 50),
        (MAIL_QUEUE, 3),
    ]
    for name, data in now:
        assert data.func == "hub.actions.batch.run_actions" and data.kwargs["queue_name"] == name
    carried = [item[1] for _, data in now for item in data.kwargs["items"]]
    assert carried == [p.key for p in actions if p.run_at is None]  # each once, in order
    first_item = now[0][1].kwargs["items"][0]
    assert first_item == (
        "hub.actions.update_profile.update_profile",
        job_key(1, "rule", 1),
        1,
        7,
        "rule",
        {"add_tags": ["x"]},
    )
    # each firing records the batch job that carries its action
    carrier = {item[1]: data.job_id for _, data in now for item in data.kwargs["items"]}
    assert {p.key: p.record["batch_job"] for p in actions if p.run_at is None} == carrier
    ((name, later, run_at),) = [j for j in jobs if j[2] is not None]
    assert (name, later.job_id, run_at) == (ACTIONS_QUEUE, job_key(1, "rule", 3), RUN_AT)
    assert later.func == "hub.actions.followups.run_followup"
    assert later.kwargs["action"] == "update_profile" and later.kwargs["unless"] is None
    assert later.kwargs["params"] == {"add_tags": ["later"]}
    assert "batch_job" not in actions[-1].record
    # the same firings planned again (a batch evaluated twice): the same jobs
    assert [data.job_id for _, data, _ in plan_jobs(ACTIONS, firings())] == [
        data.job_id for _, data, _ in jobs
    ]


def test_enqueue_puts_batches_in_their_queues_and_follow_ups_in_the_scheduler(
    hub_runtime: Runtime,
) -> None:
    jobs = plan_jobs(ACTIONS, firings())
    enqueue(hub_runtime, jobs)
    ids = {
        name: [d.job_id for n, d, r in jobs if n == name and r is None]
        for name in (ACTIONS_QUEUE, MAIL_QUEUE)
    }
    assert queue(ACTIONS_QUEUE, hub_runtime.redis).job_ids == ids[ACTIONS_QUEUE]
    assert queue(MAIL_QUEUE, hub_runtime.redis).job_ids == ids[MAIL_QUEUE]
    registry = ScheduledJobRegistry(queue=queue(ACTIONS_QUEUE, hub_runtime.redis))
    key = job_key(1, "rule", 3)
    assert registry.get_job_ids() == [key]
    assert registry.get_scheduled_time(key) == RUN_AT
