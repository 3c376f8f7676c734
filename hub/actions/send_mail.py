"""``send_mail``: render a template for the fact's profile and deliver it, at most once.

``kind: marketing`` (the default) goes to subscribed profiles only; ``kind: transactional``
(an order confirmation, a password reset) also to unsubscribed ones (see
:mod:`hub.mail.consent`). A mail handed to the relay raises the hub's own ``mail.sent`` fact.
Its ledger is the ``messages`` row of its key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import TemplateNotFound
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from hub import runtime
from hub.actions.hub_facts import raise_fact
from hub.actions.ledger import Settled, action_job, begin, settle
from hub.exceptions import FatalError, RetriableError
from hub.facts.own import MailSent
from hub.mail.consent import MailKind, refusal
from hub.mail.delivery import DeliveryUnknown, compose, deliver, new_message_id, outbox_path
from hub.models import ActionStatus, Message, MessageStatus
from hub.queue import MAIL_QUEUE
from hub.rules.actions import ActionSpec, Raised, Shown
from hub.runtime import Runtime
from hub.templates import compile_error, file_compile_error, file_environment, render_string
from hub.times import utcnow

# After delivery the outcome is known: recording it is retried on a new connection.
RECORD_ATTEMPTS = 5
RECORD_PAUSE = 0.2  # seconds, doubled each attempt


class SendMailParams(BaseModel):
    """Which template, with which subject, of which kind."""

    model_config = ConfigDict(extra="forbid")

    template: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    subject: str = Field(min_length=1)
    kind: MailKind = MailKind.MARKETING


def check_send_mail(params: SendMailParams, templates_dir: Path) -> list[str]:
    """The template files exist and compile, and so does the subject."""
    problems = []
    if err := file_compile_error(templates_dir, f"{params.template}.html"):
        problems.append(err)
    if (templates_dir / f"{params.template}.txt").exists() and (
        err := file_compile_error(templates_dir, f"{params.template}.txt")
    ):
        problems.append(err)
    if err := compile_error(params.subject):
        problems.append(f"subject does not compile: {err}")
    if any(c in params.subject for c in "\r\n"):
        problems.append("subject must be one line (a header cannot hold a line break)")
    return problems


@action_job
def send_mail(
    job_key: str, fact_id: int, profile_id: int, rule_name: str, params: dict[str, Any]
) -> str:
    """Send one mail for one (fact, rule, action); safe to run again after any crash.

    (Called with keywords, as every action job; ``rule_name`` comes before ``params`` here
    for callers of the first release, which passed them in that order.)

    The message row is committed as ``sending`` before the transport is called. A rerun that
    finds ``sending`` cannot know whether the relay accepted the mail, so it does not send
    again (no mail twice) and marks the row ``unknown``, for an operator to look at.
    """
    p = SendMailParams.model_validate(params)
    settings = runtime.current().settings
    earlier: list[Message] = []  # a failed attempt, sent again under its row

    def already(session: Session) -> Settled | None:
        existing = session.scalar(select(Message).where(Message.job_id == job_key))
        if existing is None:
            return None
        if existing.status == MessageStatus.FAILED.value:
            earlier.append(existing)
            return None
        return _settle_unknown(session, existing, settings.smtp_url, settings.outbox_dir)

    with begin(job_key, fact_id, profile_id, rule_name, already=already) as act:
        rt, profile = act.rt, act.profile
        message = (
            earlier[0]
            if earlier
            else Message(
                job_id=job_key,
                profile_id=profile_id,
                fact_id=fact_id,
                rule_name=rule_name,
                template=p.template,
                message_id=new_message_id(rt.settings.mail_from.rpartition("@")[2] or "localhost"),
            )
        )
        message.to_address = profile.email
        refused = refusal(profile.status, profile.email, p.kind.value)
        if refused:
            message.status = MessageStatus.SKIPPED.value
            message.error = refused
            act.session.add(message)
            act.skip("send_mail", refused)
            return "skipped"
        context = act.context
        try:
            subject, html, text = _render(rt.settings.rules_dir / "templates", p, context)
            mail = compose(
                sender=rt.settings.mail_from,
                to=str(profile.email),  # refusal() ruled out a profile without one
                subject=subject,
                html=html,
                text=text,
                message_id=message.message_id,
            )
        except Exception as exc:  # a broken template must not retry forever
            message.status = MessageStatus.FAILED.value
            message.error = f"template: {exc}"
            act.session.add(message)
            act.fail("send_mail", message.error)
            return "failed"
        # composed before ``sending`` is committed: a rerun that finds ``sending`` knows the
        # relay may have the mail, not that the mail could not even be built
        message.subject = str(mail["Subject"])
        message.status = MessageStatus.SENDING.value
        message.error = None
        act.session.add(message)
    try:
        deliver(mail, rt.settings.smtp_url, rt.settings.outbox_dir)
    except (RetriableError, FatalError) as exc:
        _mark_failed(rt, message.id, str(exc), None if isinstance(exc, RetriableError) else job_key)
        if isinstance(exc, RetriableError):
            raise  # nothing was accepted: RQ's Retry sends it again
        return "failed"
    except DeliveryUnknown as exc:  # the relay may have the mail: never send it again
        error = f"{exc}; not resent to avoid a duplicate"

        def record_unknown(session: Session) -> None:
            row = _message(session, message.id)
            row.status = MessageStatus.UNKNOWN.value
            row.error = error
            settle(session, job_key, "send_mail", ActionStatus.UNKNOWN, error)

        _record(rt, record_unknown)
        return "outcome unknown"

    def record_sent(session: Session) -> None:
        row = _message(session, message.id)
        row.status = MessageStatus.SENT.value
        row.sent_at = utcnow()
        settle(session, job_key, "send_mail", ActionStatus.DONE, f"sent {row.message_id}")
        raise_fact(
            rt,
            MailSent(template=p.template, subject=subject, kind=p.kind.value),
            profile=context["profile"],
            source_id=job_key,
            cause_fact=context["fact"],
            rule_name=rule_name,
            session=session,
        )

    _record(rt, record_sent)
    return "sent"


def _record(rt: Runtime, write: Callable[[Session], None]) -> None:
    """Commit what the relay's answer told, on a new connection if the one in use was cut.

    Once the relay has answered, the outcome is known: losing it to a dropped connection
    (``pg_terminate_backend``, a failover) would leave the row ``sending``, and the rerun
    would have to record ``unknown`` a mail that was sent.
    """
    for attempt in range(RECORD_ATTEMPTS):
        try:
            with rt.db.session() as session:
                write(session)
            return
        except DBAPIError as exc:
            if not exc.connection_invalidated or attempt == RECORD_ATTEMPTS - 1:
                raise
            time.sleep(RECORD_PAUSE * 2**attempt)


def _mark_failed(rt: Runtime, message_id: int, error: str, job_key: str | None) -> None:
    """The message failed; given ``job_key``, for good (the action is settled ``failed``)."""

    def record_failed(session: Session) -> None:
        row = _message(session, message_id)
        row.status = MessageStatus.FAILED.value
        row.error = error
        if job_key is not None:
            settle(session, job_key, "send_mail", ActionStatus.FAILED, error)

    _record(rt, record_failed)


def _message(session: Session, message_id: int) -> Message:
    """The message row this job committed (a mail's row is never deleted while it is sent)."""
    row = session.get(Message, message_id)
    if row is None:
        raise FatalError(f"message {message_id} disappeared while it was being sent")
    return row


_SETTLED_AS = {
    MessageStatus.SENT.value: ActionStatus.DONE,
    MessageStatus.SKIPPED.value: ActionStatus.SKIPPED,
    MessageStatus.UNKNOWN.value: ActionStatus.UNKNOWN,
}


def _settle_unknown(session: Any, message: Message, smtp_url: str | None, outbox: Path) -> Settled:
    """A rerun finds the mail's row: settle by it, and never send a ``sending`` mail again."""
    if message.status != MessageStatus.SENDING.value:
        return Settled(
            f"already {message.status}", _SETTLED_AS.get(message.status, ActionStatus.FAILED)
        )
    if not smtp_url and outbox_path(outbox, message.message_id).exists():
        message.status = MessageStatus.SENT.value
        message.sent_at = utcnow()
        return Settled("sent (found in outbox after a crash)", ActionStatus.DONE)
    message.status = MessageStatus.UNKNOWN.value
    message.error = "delivery outcome unknown after a crash; not resent to avoid a duplicate"
    return Settled("outcome unknown", ActionStatus.UNKNOWN)


def _render(
    templates_dir: Path, p: SendMailParams, context: dict[str, Any]
) -> tuple[str, str, str | None]:
    env = file_environment(str(templates_dir))
    subject = render_string(p.subject, context).strip()
    html = env.get_template(f"{p.template}.html").render(context)
    try:
        text: str | None = env.get_template(f"{p.template}.txt").render(context)
    except TemplateNotFound:
        text = None
    return subject, html, text


def show_send_mail(
    profile: dict[str, Any], params: SendMailParams, context: dict[str, Any]
) -> Shown:
    """In a scenario: the consent check, the rendered subject, and ``mail.sent``."""
    refused = refusal(profile["status"], profile["email"], params.kind.value)
    if refused:
        return Shown("skipped", refused)
    subject = render_string(params.subject, context).strip()
    sent = MailSent(template=params.template, subject=subject, kind=params.kind.value)
    return Shown("done", f"{params.template}: {subject}", (Raised(sent.TYPE, sent.data()),))


SEND_MAIL = ActionSpec(
    name="send_mail",
    params=SendMailParams,
    job=send_mail,
    queue=MAIL_QUEUE,
    check=check_send_mail,
    show=show_send_mail,
)
