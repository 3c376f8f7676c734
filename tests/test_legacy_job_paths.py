"""Jobs already in Redis keep running across the upgrade to the layout by concept.

RQ stores a job's function as a dotted path, and follow-ups wait in Redis for weeks. Every job
here is enqueued exactly as the release before the layout enqueued it (by its old path, with
the same arguments) and then run by a worker of this release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rq.job import Job, JobStatus
from sqlalchemy import select

from hub.models import ActionRun, Fact, Message, Profile
from hub.queue import ACTIONS_QUEUE, FACTS_QUEUE, MAIL_QUEUE, queue
from hub.runtime import Runtime
from tests.conftest import run_jobs
from tests.rules.test_language import fact, post, use_rules

# Every job path of the release before (module path, function): the contract of this test.
OLD_PATHS = {
    "hub.evaluate.drain_pending",
    "hub.followups.run_followup",
    "hub.sweep.sweep",
    "hub.pull.run_pull",
    "hub.pull.schedule_pulls",
    "hub.actions.batch.run_actions",
    "hub.actions.profile.update_profile",
    "hub.actions.profile.create_profile",
    "hub.actions.profile.unsubscribe",
    "hub.actions.profile.resubscribe",
    "hub.actions.mail.send_mail",
    "hub.actions.webhook.webhook",
    "hub.actions.emit.emit",
}

RULES = """
rules:
  - name: tag-buyers
    when: {fact: order.placed}
    then: [{update_profile: {add_tags: [buyer]}}]
"""


def _enqueue(rt: Runtime, name: str, func: str, **kwargs: Any) -> Job:
    return queue(name, rt.redis).enqueue(func, kwargs=kwargs, job_id=kwargs.get("job_key"))


def _ids(rt: Runtime) -> tuple[int, int]:
    with rt.db.session() as s:
        f = s.scalars(select(Fact).order_by(Fact.id)).first()
        assert f is not None and f.profile_id is not None
        return f.id, f.profile_id


def _args(key: str, fact_id: int, profile_id: int, **params: Any) -> dict[str, Any]:
    return {
        "job_key": key,
        "fact_id": fact_id,
        "profile_id": profile_id,
        "params": params,
        "rule_name": "old-rule",
    }


def test_jobs_enqueued_under_every_old_path_run_after_the_upgrade(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    rt = hub_runtime
    use_rules(rt, rules_dir, RULES)
    post(rt, fact("order.placed", total=80))
    jobs = [_enqueue(rt, FACTS_QUEUE, "hub.evaluate.drain_pending")]
    run_jobs(rt)
    fact_id, profile_id = _ids(rt)

    jobs += [
        _enqueue(
            rt,
            ACTIONS_QUEUE,
            "hub.actions.profile.update_profile",
            **_args("old-1", fact_id, profile_id, set={"tier": "gold"}),
        ),
        _enqueue(
            rt,
            ACTIONS_QUEUE,
            "hub.actions.profile.create_profile",
            **_args("old-2", fact_id, profile_id, email="friend@example.com"),
        ),
        _enqueue(
            rt,
            MAIL_QUEUE,
            "hub.actions.mail.send_mail",
            **_args(
                "old-3",
                fact_id,
                profile_id,
                template="thank-you",
                subject="Thanks",
                kind="transactional",
            ),  # fmt: skip
        ),
        _enqueue(
            rt,
            ACTIONS_QUEUE,
            "hub.actions.emit.emit",
            **_args("old-4", fact_id, profile_id, type="loyalty.earned", data={"points": 5}),
        ),
        _enqueue(
            rt,
            ACTIONS_QUEUE,
            "hub.actions.batch.run_actions",
            queue_name=ACTIONS_QUEUE,
            items=[
                (
                    "hub.actions.profile.update_profile",
                    "old-5",
                    fact_id,
                    profile_id,
                    "old-rule",
                    {"add_tags": ["batched"]},
                ),  # fmt: skip
            ],
        ),
        _enqueue(
            rt,
            ACTIONS_QUEUE,
            "hub.followups.run_followup",
            **_args("old-6", fact_id, profile_id, add_tags=["followed-up"]),
            action="update_profile",
            unless=None,
        ),
        _enqueue(rt, FACTS_QUEUE, "hub.sweep.sweep"),
        _enqueue(rt, ACTIONS_QUEUE, "hub.pull.schedule_pulls"),
        queue(ACTIONS_QUEUE, rt.redis).enqueue("hub.pull.run_pull", 999_999, 1),
    ]
    run_jobs(rt)
    _enqueue(
        rt,
        ACTIONS_QUEUE,
        "hub.actions.profile.unsubscribe",
        **_args("old-7", fact_id, profile_id),
    )
    run_jobs(rt)
    _enqueue(
        rt,
        ACTIONS_QUEUE,
        "hub.actions.profile.resubscribe",
        **_args("old-8", fact_id, profile_id),
    )
    run_jobs(rt)

    for job in jobs:
        job.refresh()
        assert job.get_status() == JobStatus.FINISHED, (job.func_name, job.exc_info)
    with rt.db.session() as s:
        ann = s.get(Profile, profile_id)
        assert ann is not None
        assert ann.fields["tier"] == "gold"
        assert {"buyer", "batched", "followed-up"} <= set(ann.tags)
        assert ann.status == "subscribed"  # unsubscribed, then resubscribed
        assert s.scalar(select(Profile).where(Profile.email == "friend@example.com"))
        assert s.scalar(select(Fact).where(Fact.type == "loyalty.earned"))
        mail = s.scalar(select(Message).where(Message.job_id == "old-3"))
        assert mail is not None and mail.status == "sent"
        done = set(s.scalars(select(ActionRun.job_id)))
        assert {"old-1", "old-2", "old-5", "old-6", "old-7", "old-8"} <= done
    assert jobs[-1].return_value() == {"skipped": 999_999}


def test_every_old_path_resolves_to_a_job_of_this_release(hub_runtime: Runtime) -> None:
    """Each old path resolves, as RQ resolves it when a worker takes the job, to a function."""
    for path in sorted(OLD_PATHS):
        job = Job.create(path, connection=hub_runtime.redis)
        assert callable(job.func), path
