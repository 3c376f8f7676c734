"""Secrets masked in log records and job descriptions: URL credentials, tokens, API keys.

Webhook URLs carry passwords (``https://user:pw@host``) and tokens (``?token=...``), headers
carry ``Authorization``; error messages and RQ's job descriptions repeat them. Every process
of the hub (web, worker, scheduler, CLI) calls :func:`install` once at start: from then on
every log record is masked when it is created, whichever logger made it (the hub's, RQ's,
gunicorn's, SQLAlchemy's) and whatever handler later writes it. Code that shows a URL or
text outside logging (an RQ job's description, an outcome stored in the database) masks it
with :func:`mask_url` or :func:`mask_secrets`.

Masking errs on the side of hiding: a parameter whose name merely looks secret is hidden too.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"
# names of query parameters and mapping keys whose values are hidden: the whole name, or a
# name ending in one of the suffixes (access_token, X-Hub-Signature, webhookSecret, x-api-key)
_SUFFIXES = (
    r"token|secret|passw(?:or)?d|signature|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
    r"|credentials?"
)
_EXACT = r"key|sig|pwd|pass|auth|authorization|cookie|jwt"
_NAME = rf"(?:[\w.~%-]*?(?:{_SUFFIXES})|(?:{_EXACT}))"
_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<info>[^/?#@\s'\"<>]+)@", re.I)
_PARAM = re.compile(rf"(?<![\w.~%-])(?P<name>{_NAME})=(?P<value>[^&;#\s'\"<>,)\]}}]+)", re.I)
_QUOTED = re.compile(
    rf"(?P<q>['\"])(?P<name>{_NAME})(?P=q)(?P<sep>\s*:\s*)(?P<v>['\"])(?P<value>(?:(?!(?P=v)).)+)(?P=v)",
    re.I,
)
_BEARER = re.compile(r"\b(?P<scheme>bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}", re.I)
_API_KEY = re.compile(r"\bhub_[A-Za-z0-9_-]{40,}")  # a whole key of hub.apikeys (43 after hub_)


def mask_secrets(text: str) -> str:
    """``text`` with every secret it shows replaced by ``***``.

    Hidden: the password of a URL's userinfo (a user name alone is taken for a token and
    hidden whole), values of secret-looking parameters (``token=``, ``api_key=``,
    ``signature=``, ``password=``... in queries and free text) and mapping entries
    (``'Authorization': '...'``), ``Bearer``/``Basic`` credentials, and the hub's API keys.
    """
    if not text:
        return text
    text = _USERINFO.sub(_userinfo, text)
    text = _PARAM.sub(lambda m: f"{m['name']}={MASK}", text)
    text = _QUOTED.sub(
        lambda m: f"{m['q']}{m['name']}{m['q']}{m['sep']}{m['v']}{MASK}{m['v']}", text
    )
    text = _BEARER.sub(lambda m: f"{m['scheme']} {MASK}", text)
    return _API_KEY.sub(f"hub_{MASK}", text)


def mask_url(url: str) -> str:
    """A URL fit for a log line or a job description: userinfo and secret parameters hidden.

    ``https://bot:pw@hooks.example/in?token=abc&x=1`` becomes
    ``https://bot:***@hooks.example/in?token=***&x=1``.
    """
    return mask_secrets(url)


def _userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match["info"].partition(":")
    return f"{match['scheme']}{user}:{MASK}@" if colon else f"{match['scheme']}{MASK}@"


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask a record's message, traceback and stack in place; return it.

    The message is formatted here (``msg % args``) only if that changes what it shows; a
    record whose arguments do not fit its message is left for logging to report as usual.
    """
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - logging itself reports a message that does not format
        return record
    masked = mask_secrets(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        trace = _FORMATTER.formatException(record.exc_info)
        hidden = mask_secrets(trace)
        if hidden != trace:
            record.exc_text = hidden
    elif record.exc_text:
        record.exc_text = mask_secrets(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_secrets(record.stack_info)
    return record


_FORMATTER = logging.Formatter()


class SecretsFilter(logging.Filter):
    """A filter that masks every record it sees (for a handler outside :func:`install`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record; never drop it."""
        mask_record(record)
        return True


def install() -> None:
    """Mask every log record of this process from now on (idempotent).

    Installed as the log record factory rather than as a filter on some handlers: a filter on
    a logger does not see records propagated from its children, and RQ and gunicorn add their
    handlers after the hub starts.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "masks_secrets", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(previous(*args, **kwargs))

    factory.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
