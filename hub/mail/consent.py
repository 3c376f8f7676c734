"""Who may get which kind of mail: the consent check every send goes through.

``marketing`` mail (the default) goes to ``subscribed`` profiles only; ``transactional`` mail
(an order confirmation, a password reset) also to unsubscribed ones. No mail ever goes to a
bounced address. The job and the scenario runner ask the same function, so a scenario shows
what the hub does.
"""

from __future__ import annotations

import enum

from hub.models import ProfileStatus


class MailKind(enum.StrEnum):
    """Whether consent rules apply: marketing needs ``subscribed``; transactional does not."""

    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


def refusal(status: str, email: str | None, kind: str) -> str | None:
    """Why a mail of ``kind`` must not go to a profile in ``status``, or None."""
    if not email:
        return "profile has no email"
    if status == ProfileStatus.BOUNCED.value:
        return f"profile is {status}"
    if kind == MailKind.MARKETING.value and status != ProfileStatus.SUBSCRIBED.value:
        return f"profile is {status}"
    return None
