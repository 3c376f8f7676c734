"""``unsubscribe`` and ``resubscribe``: consent changes once, a bounced address stays bounced."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from hub.models import ActionRun
from hub.profiles.consent import ledger
from hub.runtime import Runtime
from tests.rules.test_language import fact, fired, post, profile, settle, use_rules


def test_unsubscribe_resubscribe_and_the_hub_fact_that_follows(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: stop
            when: {fact: form.submitted, all: [data.form: unsubscribe]}
            then: [{unsubscribe: {}}]
          - name: again
            when: {fact: form.submitted, all: [data.form: subscribe]}
            then: [{resubscribe: {}}]
          - name: bye
            when: {fact: profile.unsubscribed, all: [data.previous_status: subscribed]}
            then: [{send_mail: {template: thank-you, subject: Bye, kind: transactional}}]
        """,
    )
    opted_in = {"email": "ann@example.com", "consent": {"status": "subscribed", "proof": "form"}}
    post(hub_runtime, {**fact("form.submitted", form="unsubscribe"), "profile": opted_in})
    settle(hub_runtime)
    assert profile(hub_runtime).status == "unsubscribed"
    assert fired(hub_runtime)[-1] == "bye"
    post(hub_runtime, fact("form.submitted", form="subscribe"))
    settle(hub_runtime)
    assert profile(hub_runtime).status == "subscribed"
    post(
        hub_runtime,
        {
            **fact("form.submitted", email="x@example.com", form="subscribe"),
            "profile": {"email": "x@example.com", "status": "bounced"},
        },
    )
    settle(hub_runtime)
    assert profile(hub_runtime, "x@example.com").status == "bounced"  # never resubscribed


def test_rule_actions_are_kept_in_the_consent_ledger(hub_runtime: Runtime, rules_dir: Path) -> None:
    """The rule and its fact are the proof; a bounced address stays bounced and says so."""
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: stop
            when: {fact: form.submitted, all: [data.form: unsubscribe]}
            then: [{unsubscribe: {}}]
        """,
    )
    bounced = {"email": "b@example.com", "status": "bounced"}
    (fid,) = post(hub_runtime, {**fact("form.submitted", form="unsubscribe"), "profile": bounced})
    settle(hub_runtime)
    target = profile(hub_runtime, "b@example.com")
    assert target.status == "bounced"
    with hub_runtime.db.session() as s:
        run = s.scalars(select(ActionRun).where(ActionRun.fact_id == fid)).one()
        assert (run.status, run.outcome) == ("done", "stays bounced")
        rows = ledger(s, target.id)
    by_rule = [r for r in rows if r["source"] == "rule:stop"]
    assert len(by_rule) == 1 and by_rule[0]["outcome"] == "ignored"
    assert f"fact {fid}" in by_rule[0]["proof"] and by_rule[0]["explicit"] is True
