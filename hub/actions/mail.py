"""``send_mail``: render a template for the fact's profile and deliver it, at most once.

``kind: marketing`` (the default) goes to subscribed profiles only; ``kind: transactional``
(an order confirmation, a password reset) also to unsubscribed ones. No mail ever goes to a
bounced address. A mail handed to the relay raises the hub's own ``mail.sent`` fact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import TemplateNotFound
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from hub import runtime
from hub.exceptions import FatalError, RetriableError
from hub.mail.consent import MailKind, refusal
from hub.mail.delivery import compose, deliver, new_message_id, outbox_path
from hub.models import Fact, Message, MessageStatus, Profile, utcnow
from hub.templates import compile_error, file_compile_error, file_environment, render_string


class SendMailParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    subject: str = Field(min_length=1)
    kind: MailKind = MailKind.MARKETING


def check_send_mail(params: SendMailParams, templates_dir: Path) -> list[str]:
    problems = []
    if err := file_compile_error(templates_dir, f"{params.template}.html"):
        problems.append(err)
    if (templates_dir / f"{params.template}.txt").exists() and (
        err := file_compile_error(templates_dir, f"{params.template}.txt")
    ):
        problems.append(err)
    if err := compile_error(params.subject):
        problems.append(f"subject does not compile: {err}")
    return problems


def send_mail(
    job_key: str, fact_id: int, profile_id: int, rule_name: str, params: dict[str, Any]
) -> str:
    """Send one mail for one (fact, rule, action); safe to run again after any crash.

    The message row is committed as ``sending`` before the transport is called. A rerun that
    finds ``sending`` cannot know whether the relay accepted the mail, so it does not send
    again (no mail twice) and marks the row ``unknown``, for an operator to look at.
    """
    rt = runtime.get()
    p = SendMailParams.model_validate(params)
    with rt.db.session() as session:
        existing = session.scalar(select(Message).where(Message.job_id == job_key))
        if existing is not None and existing.status != MessageStatus.FAILED.value:
            return _settle_unknown(session, existing, rt.settings.smtp_url, rt.settings.outbox_dir)
        profile = session.get(Profile, profile_id)
        fact = session.get(Fact, fact_id)
        if profile is None or fact is None:
            return "profile or fact no longer exists"
        message = existing or Message(
            job_id=job_key,
            profile_id=profile_id,
            fact_id=fact_id,
            rule_name=rule_name,
            template=p.template,
            message_id=new_message_id(rt.settings.mail_from.rpartition("@")[2] or "localhost"),
        )
        message.to_address = profile.email
        refused = refusal(profile.status, profile.email, p.kind.value)
        if refused:
            message.status = MessageStatus.SKIPPED.value
            message.error = refused
            session.add(message)
            return "skipped"
        context = {"profile": profile.as_dict(), "fact": fact.as_dict()}
        try:
            subject, html, text = _render(rt.settings.rules_dir / "templates", p, context)
        except Exception as exc:  # a broken template must not retry forever
            message.status = MessageStatus.FAILED.value
            message.error = f"template: {exc}"
            session.add(message)
            return "failed"
        message.subject = subject
        message.status = MessageStatus.SENDING.value
        message.error = None
        session.add(message)
    mail = compose(
        sender=rt.settings.mail_from,
        to=profile.email,
        subject=subject,
        html=html,
        text=text,
        message_id=message.message_id,
    )
    try:
        deliver(mail, rt.settings.smtp_url, rt.settings.outbox_dir)
    except (RetriableError, FatalError) as exc:
        with rt.db.session() as session:
            row = session.get(Message, message.id)
            row.status = MessageStatus.FAILED.value
            row.error = str(exc)
        if isinstance(exc, RetriableError):
            raise  # nothing was accepted: RQ's Retry sends it again
        return "failed"
    from hub.actions.emit import raise_fact

    with rt.db.session() as session:
        row = session.get(Message, message.id)
        row.status = MessageStatus.SENT.value
        row.sent_at = utcnow()
        raise_fact(
            rt,
            fact_type="mail.sent",
            profile=context["profile"],
            data={"template": p.template, "subject": subject, "kind": p.kind.value},
            source_id=job_key,
            cause_fact=context["fact"],
            rule_name=rule_name,
            session=session,
        )
    return "sent"


def _settle_unknown(session: Any, message: Message, smtp_url: str | None, outbox: Path) -> str:
    if message.status != MessageStatus.SENDING.value:
        return f"already {message.status}"
    if not smtp_url and outbox_path(outbox, message.message_id).exists():
        message.status = MessageStatus.SENT.value
        message.sent_at = utcnow()
        return "sent (found in outbox after a crash)"
    message.status = MessageStatus.UNKNOWN.value
    message.error = "delivery outcome unknown after a crash; not resent to avoid a duplicate"
    return "outcome unknown"


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
