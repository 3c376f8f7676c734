"""Composing and delivering mail: an SMTP relay, or ``.eml`` files in the outbox.

``HUB_SMTP_URL``: ``smtp://[user:pass@]host[:port]`` (plain; add ``?starttls=true`` to require
STARTTLS) or ``smtps://...`` (TLS from the start). Without it, mail goes to
``HUB_HOME/outbox/<message-id>.eml``. Credentials are sent only over TLS (smtps or STARTTLS);
``?plain_auth=true`` allows them in the clear to a relay on a loopback address, nowhere else.

Once the content of a mail has gone to the relay, the relay may have accepted it whatever
happens next: the hub waits :data:`DATA_REPLY_TIMEOUT` seconds for the answer (RFC 5321
4.5.3.2.6 advises 10 minutes; a relay that answers later than the per-command timeout must
not get the mail twice), and a failure after that point is :class:`DeliveryUnknown`, never
retried.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from hub.config import plain_auth_refusal
from hub.exceptions import FatalError, HubError, RetriableError
from hub.times import utcnow

SMTP_TIMEOUT = 30  # seconds, per command before the content is sent
DATA_REPLY_TIMEOUT = 120  # seconds the relay may take to answer the content of a mail
_DOT_AT_LINE_START = re.compile(rb"(?m)^\.")


class DeliveryUnknown(HubError):
    """The relay may have accepted the mail (the failure came after its data): never resend."""


def _flag(query: str, name: str) -> bool:
    return parse_qs(query).get(name, ["false"])[0].lower() in ("1", "true", "yes")


def clean_header(value: str) -> str:
    """A header value on one line: each run of line breaks (CR, LF, and the like) becomes a space.

    A template may render a field that holds a line break into a subject; Python's email
    package refuses such a header (it would let a value add headers of its own).
    """
    return " ".join(part.strip() for part in value.splitlines() if part.strip())


def new_message_id(domain: str) -> str:
    """A new, unique ``Message-ID`` (in angle brackets) for mail from ``domain``."""
    return make_msgid(domain=domain)


def compose(
    *, sender: str, to: str, subject: str, html: str | None, text: str | None, message_id: str
) -> EmailMessage:
    """The message to deliver: a plain-text part and, given ``html``, an HTML alternative.

    Without ``text`` the plain-text part is a line asking for an HTML mail reader. Line
    breaks in the subject are replaced (:func:`clean_header`).
    """
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = clean_header(subject)
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
        FatalError: the relay refused the message for good (5xx), or its URL would send
            credentials in the clear.
        DeliveryUnknown: the content was sent and no answer came (or the connection broke):
            the relay may have the mail.
    """
    if not smtp_url:
        _write_outbox(msg, outbox)
        return
    refused = plain_auth_refusal(smtp_url)  # also checked when the settings are read
    if refused:
        raise FatalError(f"HUB_SMTP_URL: {refused}")
    parts = urlsplit(smtp_url)
    host = parts.hostname or "localhost"
    try:
        if parts.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, parts.port or 465, timeout=SMTP_TIMEOUT, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(host, parts.port or 25, timeout=SMTP_TIMEOUT)
        with client:
            if _flag(parts.query, "starttls"):
                client.starttls(context=ssl.create_default_context())
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            _transact(client, msg)
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise RetriableError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        raise FatalError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise FatalError(f"recipient refused: {exc.recipients!r}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise RetriableError(f"SMTP relay {host}: {exc}") from exc


def _transact(client: smtplib.SMTP, msg: EmailMessage) -> None:
    """MAIL, RCPT and DATA for one message; what fails after its content went out is unknown.

    smtplib's ``send_message`` does the same but cannot tell a failure before the content
    (nothing accepted: retry) from one after it (the relay may have the mail: do not).
    """
    sender = str(msg["From"])
    recipients = [str(msg["To"])]
    client.ehlo_or_helo_if_needed()
    code, reply = client.mail(sender)
    if code != 250:
        client.rset()
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused: dict[str, tuple[int, bytes]] = {}
    for rcpt in recipients:
        code, reply = client.rcpt(rcpt)
        if code not in (250, 251):
            refused[rcpt] = (code, reply)
    if len(refused) == len(recipients):
        client.rset()
        raise smtplib.SMTPRecipientsRefused(refused)
    client.putcmd("data")
    code, reply = client.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    payload = _DOT_AT_LINE_START.sub(b"..", msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    payload += b".\r\n"  # RFC 5321 4.1.1.4: the end of the data, a leading dot doubled
    try:
        client.send(payload)
        if client.sock is not None:
            client.sock.settimeout(DATA_REPLY_TIMEOUT)
        code, reply = client.getreply()
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryUnknown(
            f"no answer from the relay after the content of the mail ({type(exc).__name__})"
        ) from exc
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)


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
