"""The preamble every action job shares: act once, on a profile and fact that still exist, the
effect and its ledger row committed together."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.actions.ledger import Settled, action_job, begin
from hub.models import ActionRun, Fact, Message, Profile, RuleFiring
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from tests.conftest import run_jobs
from tests.rules.test_language import fact, use_rules
from tests.worker.test_evaluate import count, order, post

QUIET = """
rules:
  - name: unrelated
    when: {fact: never.happens}
    then: [{update_profile: {add_tags: [never]}}]
"""


def stored_fact(rt: Runtime, rules_dir: Path) -> tuple[int, int]:
    """A fact evaluated by rules that ignore it, and its profile: ``(fact id, profile id)``."""
    use_rules(rt, rules_dir, QUIET)
    (fact_id,) = post(rt, fact("page.viewed"))
    drain_pending()
    with rt.db.session() as s:
        return fact_id, s.get(Fact, fact_id).profile_id


@action_job
def tag(job_key: str, fact_id: int, profile_id: int, name: str, fail: bool = False) -> str:
    """An action job as every module of hub.actions writes one: add a tag."""
    with begin(job_key, fact_id, profile_id, "test-rule", lock=True) as act:
        act.profile.tags = [*act.profile.tags, name]
        act.done("tag")
        if fail:
            raise RuntimeError("the job broke after its effect")
    return "applied"


def tags(rt: Runtime, profile_id: int) -> list[str]:
    with rt.db.session() as s:
        return list(s.get(Profile, profile_id).tags)


def ledger(rt: Runtime) -> dict[str, tuple[str, int | None]]:
    with rt.db.session() as s:
        return {r.job_id: (r.action, r.fact_id) for r in s.scalars(select(ActionRun))}


def test_a_job_whose_key_is_in_the_ledger_is_settled_as_already_applied(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    fact_id, profile_id = stored_fact(hub_runtime, rules_dir)
    assert tag("key-1", fact_id, profile_id, "first") == "applied"
    assert tag("key-1", fact_id, profile_id, "again") == "already applied"
    assert tags(hub_runtime, profile_id) == ["first"]
    assert ledger(hub_runtime) == {"key-1": ("tag", fact_id)}
    assert tag("key-2", fact_id, profile_id, "second") == "applied"  # another key acts
    assert tags(hub_runtime, profile_id) == ["first", "second"]


@pytest.mark.parametrize("gone", [Profile, Fact])
def test_a_job_whose_profile_or_fact_is_gone_is_settled_and_does_nothing(
    hub_runtime: Runtime, rules_dir: Path, gone: type[Profile] | type[Fact]
) -> None:
    fact_id, profile_id = stored_fact(hub_runtime, rules_dir)
    with hub_runtime.db.session() as s:
        s.execute(delete(gone).where(gone.id == (profile_id if gone is Profile else fact_id)))
    assert tag("key-1", fact_id, profile_id, "x") == "profile or fact no longer exists"
    assert ledger(hub_runtime) == {}
    with hub_runtime.db.session() as s:
        assert [p.tags for p in s.scalars(select(Profile))] == ([] if gone is Profile else [[]])


def test_what_the_already_hook_writes_is_committed_before_the_job_is_settled(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    fact_id, profile_id = stored_fact(hub_runtime, rules_dir)

    @action_job
    def checked(job_key: str, answer: str | None) -> str:
        def already(session: Session) -> Settled | None:
            session.add(ActionRun(job_id=f"{job_key}:checked", action="checked", fact_id=fact_id))
            return Settled(answer) if answer else None

        with begin(job_key, fact_id, profile_id, "test-rule", already=already) as act:
            act.profile.tags = ["ran"]
            act.done("checked-job")
        return "ran"

    assert checked("key-1", "already handled elsewhere") == "already handled elsewhere"
    assert ledger(hub_runtime) == {"key-1:checked": ("checked", fact_id)}
    assert tags(hub_runtime, profile_id) == []
    # the hook finds nothing: the job runs, and the hook's write commits with its effect
    assert checked("key-2", None) == "ran"
    assert ledger(hub_runtime) == {
        "key-1:checked": ("checked", fact_id),
        "key-2:checked": ("checked", fact_id),
        "key-2": ("checked-job", fact_id),
    }
    assert tags(hub_runtime, profile_id) == ["ran"]


def test_the_effect_and_its_ledger_row_commit_together(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    fact_id, profile_id = stored_fact(hub_runtime, rules_dir)
    with pytest.raises(RuntimeError, match="broke after its effect"):
        tag("key-1", fact_id, profile_id, "half", fail=True)
    assert tags(hub_runtime, profile_id) == [] and ledger(hub_runtime) == {}
    # nothing was recorded, so the job's retry acts
    assert tag("key-1", fact_id, profile_id, "whole") == "applied"
    assert tags(hub_runtime, profile_id) == ["whole"]
    assert ledger(hub_runtime) == {"key-1": ("tag", fact_id)}


def test_a_job_run_twice_acts_once(hub_runtime: Runtime) -> None:
    from hub.actions.send_mail import send_mail
    from hub.actions.update_profile import update_profile

    post(hub_runtime, order())
    drain_pending()
    run_jobs(hub_runtime)
    with hub_runtime.db.session() as session:
        firing = session.scalar(
            select(RuleFiring).where(RuleFiring.rule_name == "thank-you-for-your-order")
        )
    update_job, mail_job = firing.jobs
    assert (
        update_profile(update_job["job_id"], firing.fact_id, firing.profile_id, {"add_tags": ["x"]})
        == "already applied"
    )
    assert send_mail(
        mail_job["job_id"],
        firing.fact_id,
        firing.profile_id,
        firing.rule_name,
        {"template": "thank-you", "subject": "s"},
    ).startswith("already")
    assert count(hub_runtime, Message) == 1
