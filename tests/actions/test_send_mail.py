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


def test_a_subject_with_a_line_break_is_refused_when_the_rules_are_checked(
    tmp_path: Path,
) -> None:
    from hub.actions import ACTIONS
    from hub.rules.reader import check_rules

    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "hello.html").write_text("<p>hello</p>")
    (tmp_path / "mail.yaml").write_text(
        "rules:\n"
        "  - name: hello\n"
        "    when: {fact: signup.done}\n"
        '    then: [{send_mail: {template: hello, subject: "Hello\\r\\nBcc: all@example.com"}}]\n'
    )
    problems = check_rules(tmp_path, ACTIONS)[1]
    assert any("subject must be one line" in str(p) for p in problems), problems


def test_a_subject_rendered_with_a_line_break_is_cleaned_and_sent(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
rules:
  - name: hello
    when: {fact: signup.done}
    then: [{send_mail: {template: welcome, subject: "Hello {{ profile.fields.name }}"}}]
""",
    )
    post(
        hub_runtime,
        {
            "type": "signup.done",
            "profile": {
                "email": "eve@example.com",
                "fields": {"name": "Eve\r\nBcc: x@example.com"},
                "consent": {"status": "subscribed", "proof": "signed up"},
            },
        },
    )
    settle(hub_runtime)
    with hub_runtime.db.session() as s:
        (message,) = s.scalars(select(Message))
    assert message.status == "sent", message.error
    sent = (hub_runtime.settings.outbox_dir / f"{message.message_id.strip('<>')}.eml").read_text()
    headers = sent.split("\n\n", 1)[0]
    assert "Bcc" not in headers.replace("Subject: Hello Eve Bcc: x@example.com", "")
    assert "Subject: Hello Eve Bcc: x@example.com" in headers
