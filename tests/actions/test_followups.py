"""Follow-ups: delayed actions in RQ's scheduler, ``unless`` re-checked when due, cancellable,
surviving a worker restart."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from hub.models import ActionRun, Profile, RuleFiring
from hub.queue import ACTIONS_QUEUE, queue
from hub.runtime import Runtime
from hub.worker.dispatch import job_key
from hub.worker.drain import drain_pending
from hub.worker.process import build_worker
from tests.conftest import hub_env, start_hub, stop_hub, wait_until
from tests.rules.test_language import fact, post, profile, use_rules

NUDGE = """
rules:
  - name: nudge
    when: {fact: cart.abandoned}
    then:
      - update_profile: {add_tags: [nudged]}
        after: AFTER
        unless:
          - history: {fact: order.placed, since: trigger}
          - profile.fields.plan: premium
"""


def run_due(rt: Runtime) -> None:
    """A burst worker with RQ's scheduler: enqueues the jobs that are due, then runs them."""
    build_worker(rt).work(burst=True, with_scheduler=True, logging_level="WARNING")


def scheduled(rt: Runtime) -> list[str]:
    return ScheduledJobRegistry(queue=queue(ACTIONS_QUEUE, rt.redis)).get_job_ids()


def tags(rt: Runtime) -> list[str]:
    return profile(rt).tags


def ledger(rt: Runtime, job_id: str) -> str | None:
    """How the action's outbox row is settled: its action when done, else its status."""
    with rt.db.session() as s:
        run = s.get(ActionRun, job_id)
        if run is None or run.status == "planned":
            return None
        return run.action if run.status == "done" else f"{run.status}:{run.action}"


def test_a_delayed_action_waits_for_its_time_then_runs(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    # 3 s: room for a slow first run_due, which must not find the action due yet
    use_rules(hub_runtime, rules_dir, NUDGE.replace("AFTER", "3s"))
    (fid,) = post(hub_runtime, fact("cart.abandoned"))
    drain_pending()
    run_due(hub_runtime)
    key = job_key(fid, "nudge", 0)
    assert scheduled(hub_runtime) == [key]  # its deterministic id, in RQ's scheduled registry
    assert tags(hub_runtime) == []
    with hub_runtime.db.session() as s:
        (record,) = s.scalar(select(RuleFiring)).jobs
    assert record["job_id"] == key and "run_at" in record
    time.sleep(3.2)
    run_due(hub_runtime)
    assert tags(hub_runtime) == ["nudged"] and ledger(hub_runtime, key) == "update_profile"


def test_unless_is_checked_when_the_delay_ends(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(hub_runtime, rules_dir, NUDGE.replace("AFTER", "1s"))
    (ordered,) = post(hub_runtime, fact("cart.abandoned"))
    (upgraded,) = post(hub_runtime, fact("cart.abandoned", email="bo@example.com"))
    (kept,) = post(hub_runtime, fact("cart.abandoned", email="cy@example.com"))
    drain_pending()
    # after the trigger: ann orders; bo's plan changes; cy does nothing
    post(hub_runtime, fact("order.placed"))
    post(
        hub_runtime,
        {
            **fact("form.submitted", email="bo@example.com"),
            "profile": {
                "email": "bo@example.com",
                "fields": {"plan": "premium"},
                "consent": {"status": "subscribed", "proof": "opted in at checkout"},
            },
        },
    )
    drain_pending()
    time.sleep(1.2)
    run_due(hub_runtime)
    assert ledger(hub_runtime, job_key(ordered, "nudge", 0)) == "skipped:update_profile"
    assert ledger(hub_runtime, job_key(upgraded, "nudge", 0)) == "skipped:update_profile"
    assert ledger(hub_runtime, job_key(kept, "nudge", 0)) == "update_profile"
    assert tags(hub_runtime) == [] and profile(hub_runtime, "cy@example.com").tags == ["nudged"]


def test_an_order_before_the_trigger_does_not_cancel_the_follow_up(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(hub_runtime, rules_dir, NUDGE.replace("AFTER", "1s"))
    post(hub_runtime, fact("order.placed"))
    drain_pending()
    (fid,) = post(hub_runtime, fact("cart.abandoned"))
    drain_pending()
    time.sleep(1.2)
    run_due(hub_runtime)
    assert ledger(hub_runtime, job_key(fid, "nudge", 0)) == "update_profile"


def test_evaluating_again_schedules_once(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(hub_runtime, rules_dir, NUDGE.replace("AFTER", "1h"))
    post(hub_runtime, fact("cart.abandoned"))
    drain_pending()
    with hub_runtime.db.session() as s:
        s.execute(RuleFiring.__table__.delete())  # even with the firing record gone
        from hub.models import Fact

        s.execute(Fact.__table__.update().values(status="pending"))
    drain_pending()
    assert len(scheduled(hub_runtime)) == 1


def test_a_follow_up_can_be_cancelled(
    hub_runtime: Runtime, rules_dir: Path, client: Any, auth: dict[str, str]
) -> None:
    use_rules(hub_runtime, rules_dir, NUDGE.replace("AFTER", "1s"))
    (fid,) = post(hub_runtime, fact("cart.abandoned"))
    drain_pending()
    key = job_key(fid, "nudge", 0)
    assert client.delete(f"/api/v1/followups/{key}").status_code == 401
    answer = client.delete(f"/api/v1/followups/{key}", headers=auth)
    assert answer.status_code == 200 and answer.json == {"job_id": key, "cancelled": True}
    assert scheduled(hub_runtime) == []
    time.sleep(1.2)
    run_due(hub_runtime)
    assert tags(hub_runtime) == [] and ledger(hub_runtime, key) == "cancelled:update_profile"
    again = client.delete(f"/api/v1/followups/{key}", headers=auth)
    assert again.status_code == 409
    with hub_runtime.db.session() as s:
        pid = s.scalar(select(Profile.id))
    events = client.get(f"/api/v1/profiles/{pid}/timeline", headers=auth).json["events"]
    assert [e["state"] for e in events if e["kind"] == "scheduled"] == ["cancelled"]


def test_a_delayed_action_survives_a_worker_restart(
    hub_runtime: Runtime, rules_dir: Path, tmp_path: Path
) -> None:
    (rules_dir / "followup.yaml").write_text(
        textwrap.dedent("""
        rules:
          - name: later
            when: {fact: cart.abandoned}
            then:
              - update_profile: {add_tags: [later]}
                after: 4s
        """)
    )
    env = hub_env(hub_runtime.settings)
    log = tmp_path / "workers.log"
    first = start_hub(["worker", "--no-scheduler"], env, log)
    try:
        (fid,) = post(hub_runtime, fact("cart.abandoned"))
        from hub.facts.ingest import notify

        notify(hub_runtime.settings, hub_runtime.redis)
        key = job_key(fid, "later", 0)
        assert wait_until(lambda: key in scheduled(hub_runtime), 20), log.read_text()[-2000:]
    finally:
        stop_hub(first)  # the worker that scheduled it is gone before it is due
    assert ledger(hub_runtime, key) is None
    second = start_hub(["worker", "--no-scheduler"], env, log)
    try:
        assert wait_until(lambda: ledger(hub_runtime, key) == "update_profile", 60), (
            log.read_text()[-3000:]
        )
    finally:
        stop_hub(second)
    assert tags(hub_runtime) == ["later"]


def test_cli_cancels_every_follow_up_of_a_profile(hub_runtime: Runtime, rules_dir: Path) -> None:
    from click.testing import CliRunner

    from hub.cli.main import main
    from tests.conftest import hub_env

    use_rules(hub_runtime, rules_dir, NUDGE.replace("AFTER", "1h"))
    first, second = post(hub_runtime, fact("cart.abandoned"), fact("cart.abandoned"))
    drain_pending()
    with hub_runtime.db.session() as s:
        pid = s.scalar(select(Profile.id))
    env = hub_env(hub_runtime.settings)
    result = CliRunner().invoke(main, ["rules", "cancel", "--profile", str(pid)], env=env)
    assert result.exit_code == 0, result.output
    keys = {job_key(first, "nudge", 0), job_key(second, "nudge", 0)}
    assert set(result.output.replace("cancelled ", "").split()) == keys
    assert scheduled(hub_runtime) == []
    again = CliRunner().invoke(main, ["rules", "cancel", job_key(first, "nudge", 0)], env=env)
    assert (
        again.exit_code == 1 and "not cancelled (already ran, skipped or cancelled)" in again.output
    )


def test_at_takes_a_date_from_the_fact_and_bad_data_skips_only_that_action(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: remind
            when: {fact: form.submitted}
            then:
              - update_profile: {add_tags: [reminded]}
                at: "{{ fact.data.remind_at }}"
              - update_profile: {add_tags: [registered]}
        """,
    )
    good, bad = post(
        hub_runtime,
        fact("form.submitted", remind_at="2030-01-01T09:00:00Z"),
        fact("form.submitted", email="bo@example.com", remind_at="next tuesday"),
    )
    drain_pending()
    run_due(hub_runtime)
    with hub_runtime.db.session() as s:
        jobs = {f.fact_id: f.jobs for f in s.scalars(select(RuleFiring))}
    assert jobs[good][0]["run_at"] == "2030-01-01T09:00:00+00:00"
    assert scheduled(hub_runtime) == [job_key(good, "remind", 0)]
    assert jobs[bad][0]["skipped"].startswith(
        "ValueError: 'at' of update_profile did not give a date"
    )
    assert profile(hub_runtime, "bo@example.com").tags == ["registered"]  # the rest still ran
