"""Signed tokens in a mail: unsubscribe link, open pixel, tracked links, return path.

A token names a ``messages`` row (and, for a click, the link's index in it) and is signed with
the installation's secret key (HMAC-SHA256, itsdangerous), one salt per purpose: a token made
for the open pixel is no unsubscribe token, and an altered one reads as nothing. Tokens do not
expire: an unsubscribe link must keep working as long as the mail is in someone's mailbox
(RFC 8058 asks for no expiry the sender controls). The return path is signed too, in a
shorter form (:func:`return_path`).
"""

from __future__ import annotations

import enum
import hashlib
import hmac

from itsdangerous import BadSignature, URLSafeSerializer

from hub.config import Settings


class Purpose(enum.StrEnum):
    """What a token opens; each is signed with a salt of its own."""

    UNSUBSCRIBE = "unsubscribe"
    OPEN = "open"
    CLICK = "click"


def _serializer(secret: str, purpose: Purpose) -> URLSafeSerializer:
    return URLSafeSerializer(
        secret,
        salt=f"hub.mail.{purpose.value}",
        signer_kwargs={"digest_method": hashlib.sha256},
    )


def make_token(secret: str, purpose: Purpose, *values: int) -> str:
    """A URL-safe token carrying ``values`` (a message row id, a link index), signed."""
    return _serializer(secret, purpose).dumps(list(values))


def read_token(secret: str, purpose: Purpose, token: str, arity: int) -> tuple[int, ...] | None:
    """The ``arity`` whole numbers a genuine token of ``purpose`` carries, else ``None``.

    Anything else (a forged or altered signature, another purpose's token, a payload of the
    wrong shape, absurd lengths) is ``None``: the caller answers 404 and records nothing.
    """
    if not token or len(token) > 512:
        return None
    try:
        payload = _serializer(secret, purpose).loads(token)
    except (BadSignature, ValueError, UnicodeDecodeError):
        return None
    if (
        not isinstance(payload, list)
        or len(payload) != arity
        or not all(type(v) is int and 0 <= v < 2**63 for v in payload)
    ):
        return None
    return tuple(payload)


def unsubscribe_url(settings: Settings, message_row: int) -> str:
    """The one-click unsubscribe URL of a message (RFC 8058), also its hosted page."""
    token = make_token(settings.secret_key, Purpose.UNSUBSCRIBE, message_row)
    return f"{settings.public_url}/u/{token}"


def open_url(settings: Settings, message_row: int) -> str:
    """The URL of a message's open pixel."""
    token = make_token(settings.secret_key, Purpose.OPEN, message_row)
    return f"{settings.public_url}/t/o/{token}.gif"


def click_url(settings: Settings, message_row: int, link: int) -> str:
    """The tracked URL of link number ``link`` of a message."""
    token = make_token(settings.secret_key, Purpose.CLICK, message_row, link)
    return f"{settings.public_url}/t/c/{token}"


def bounce_domain(settings: Settings) -> str:
    """The domain bounces come back to: ``HUB_BOUNCE_ADDRESS``'s, else the sender's."""
    address = settings.bounce_address or settings.mail_from
    return address.rpartition("@")[2].strip("<> ") or "localhost"


def return_path(settings: Settings, message_row: int) -> str:
    """The envelope sender of a message: ``<local>+<id>-<signature>@<domain>`` (VERP).

    A bounce comes back to this address, so the address alone names the message, whatever
    the bouncing server quotes of it. Unlike the link tokens it is short (a local part holds
    at most 64 characters, RFC 5321 4.5.3.1.1) and of lower-case letters and digits only,
    so a server that changes the case of an address does not break it: the row id in base
    36 and 64 bits of HMAC-SHA256.
    """
    local = (settings.bounce_address or "bounces@").partition("@")[0] or "bounces"
    return f"{local}+{_verp_tag(settings.secret_key, message_row)}@{bounce_domain(settings)}"


def _verp_tag(secret: str, message_row: int) -> str:
    ident = _base36(message_row)
    mac = hmac.new(secret.encode(), f"hub.mail.bounce:{ident}".encode(), hashlib.sha256)
    return f"{ident}-{mac.hexdigest()[:16]}"


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if not value:
            return out


def message_of_return_path(settings: Settings, address: str) -> int | None:
    """The message row a bounce address (:func:`return_path`) names, or ``None``."""
    local = address.strip().strip("<>").rpartition("@")[0].lower()
    _, plus, tag = local.partition("+")
    ident, dash, _mac = tag.partition("-")
    if not plus or not dash or not 0 < len(ident) <= 13 or not ident.isalnum():
        return None
    try:
        row = int(ident, 36)
    except ValueError:
        return None
    if row >= 2**63 or not hmac.compare_digest(_verp_tag(settings.secret_key, row), tag):
        return None
    return row
