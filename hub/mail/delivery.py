"""Composing and delivering mail: an SMTP relay, or ``.eml`` files in the outbox.

``HUB_SMTP_URL``: ``smtp://[user:pass@]host[:port]`` (plain; add ``?starttls=true`` to require
STARTTLS) or ``smtps://...`` (TLS from the start). Without it, mail goes to
``HUB_HOME/outbox/<message-id>.eml``.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from hub.exceptions import FatalError, HubError, RetriableError
from hub.times import utcnow

SMTP_TIMEOUT = 30


class DeliveryUnknown(HubError):
    """The relay may have accepted the mail (the failure came after its data): never resend."""


def new_message_id(domain: str) -> str:
    """A new, unique ``Message-ID`` (in angle brackets) for mail from ``domain``."""
    return make_msgid(domain=domain)


def compose(
    *, sender: str, to: str, subject: str, html: str | None, text: str | None, message_id: str
) -> EmailMessage:
    """The message to deliver: a plain-text part and, given ``html``, an HTML alternative.

    Without ``text`` the plain-text part is a line asking for an HTML mail reader.
    """
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(utcnow())
    msg.set_content(text or "This message is best viewed in an HTML mail reader.\n")
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def outbox_path(outbox: Path, message_id: str) -> Path:
    """The outbox file of a message: its ``Message-ID`` without angle brackets, plus ``.eml``."""
    return outbox / f"{message_id.strip('<>')}.eml"


def deliver(msg: EmailMessage, smtp_url: str | None, outbox: Path) -> None:
    """Hand ``msg`` over for delivery.

    Raises:
        RetriableError: the relay could not be reached or answered 4xx; nothing was accepted.
        FatalError: the relay refused the message for good (5xx).
    """
    if not smtp_url:
        _write_outbox(msg, outbox)
        return
    parts = urlsplit(smtp_url)
    query = parse_qs(parts.query)
    host = parts.hostname or "localhost"
    try:
        if parts.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, parts.port or 465, timeout=SMTP_TIMEOUT, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(host, parts.port or 25, timeout=SMTP_TIMEOUT)
        with client:
            if query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes"):
                client.starttls(context=ssl.create_default_context())
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(msg)
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise RetriableError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        raise FatalError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise FatalError(f"recipient refused: {exc.recipients!r}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise RetriableError(f"SMTP relay {host}: {exc}") from exc


def _write_outbox(msg: EmailMessage, outbox: Path) -> None:
    """Write atomically: a reader never sees half a file, a rerun overwrites the same name."""
    outbox.mkdir(parents=True, exist_ok=True)
    target = outbox_path(outbox, str(msg["Message-ID"]))
    fd, tmp = tempfile.mkstemp(dir=outbox, prefix=".tmp-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(msg.as_bytes())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
