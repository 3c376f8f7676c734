"""``send_mail``: consent by kind of mail, never to a bounced address."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from hub.models import Message, Profile
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from tests.conftest import run_jobs
from tests.rules.test_language import post, settle, use_rules
from tests.worker.test_evaluate import count, order


def test_transactional_mail_reaches_unsubscribed_but_never_bounced(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        fact_types: [order.paid]
        rules:
          - name: confirm
            when: {fact: order.paid}
            then: [{send_mail: {template: thank-you, subject: Paid, kind: transactional}}]
          - name: promo
            when: {fact: order.paid}
            then: [{send_mail: {template: thank-you, subject: Promo}}]
        """,
    )
    post(
        hub_runtime,
        {
            "type": "order.paid",
            "profile": {"email": "u@example.com", "status": "unsubscribed"},
            "data": {"total": 5},
        },
        {
            "type": "order.paid",
            "profile": {"email": "b@example.com", "status": "bounced"},
            "data": {"total": 5},
        },
    )
    settle(hub_runtime)
    with hub_runtime.db.session() as s:
        rows = {
            (m.to_address, m.subject or m.template, m.status, m.error)
            for m in s.scalars(select(Message))
        }
    assert rows == {
        ("u@example.com", "Paid", "sent", None),
        ("u@example.com", "thank-you", "skipped", "profile is unsubscribed"),
        ("b@example.com", "thank-you", "skipped", "profile is bounced"),
        ("b@example.com", "thank-you", "skipped", "profile is bounced"),
    }
    assert len(list(hub_runtime.settings.outbox_dir.glob("*.eml"))) == 1


def test_no_mail_to_unsubscribed_profile(hub_runtime: Runtime) -> None:
    post(hub_runtime, order(profile={"email": "bob@example.com", "status": "unsubscribed"}))
    drain_pending()
    run_jobs(hub_runtime)
    with hub_runtime.db.session() as session:
        profile = session.scalar(select(Profile))
        assert profile.status == "unsubscribed"
    # the rule's own condition (profile.status: subscribed) already keeps it from firing
    assert count(hub_runtime, Message) == 0
    assert list(hub_runtime.settings.outbox_dir.glob("*.eml")) == []


def test_send_mail_never_mails_a_profile_that_is_not_subscribed(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    (rules_dir / "orders.yaml").write_text(
        "rules:\n"
        "  - name: careless\n"
        "    when: {fact: order.placed}\n"
        "    then:\n"
        "      - send_mail: {template: thank-you, subject: hi}\n"
    )
    hub_runtime.set_engine(None)
    post(hub_runtime, order(profile={"email": "bob@example.com", "status": "bounced"}))
    drain_pending()
    run_jobs(hub_runtime)
    with hub_runtime.db.session() as session:
        message = session.scalar(select(Message))
    assert message.status == "skipped" and "bounced" in message.error
    assert list(hub_runtime.settings.outbox_dir.glob("*.eml")) == []
