"""Who may get which kind of mail: the refusal matrix every send goes through."""

from __future__ import annotations

import pytest

from hub.mail.consent import MailKind, refusal
from hub.models import ProfileStatus


@pytest.mark.parametrize(
    ("status", "kind", "refused"),
    [
        (ProfileStatus.UNCONFIRMED, MailKind.MARKETING, "profile is unconfirmed"),
        (ProfileStatus.UNCONFIRMED, MailKind.TRANSACTIONAL, None),
        (ProfileStatus.SUBSCRIBED, MailKind.MARKETING, None),
        (ProfileStatus.SUBSCRIBED, MailKind.TRANSACTIONAL, None),
        (ProfileStatus.UNSUBSCRIBED, MailKind.MARKETING, "profile is unsubscribed"),
        (ProfileStatus.UNSUBSCRIBED, MailKind.TRANSACTIONAL, None),
        (ProfileStatus.BOUNCED, MailKind.MARKETING, "profile is bounced"),
        (ProfileStatus.BOUNCED, MailKind.TRANSACTIONAL, "profile is bounced"),
    ],
)
def test_refusal_matrix(status: ProfileStatus, kind: MailKind, refused: str | None) -> None:
    assert refusal(status.value, "ann@example.com", kind.value) == refused


def test_the_matrix_covers_every_status_and_kind() -> None:
    assert {s.value for s in ProfileStatus} == {
        "unconfirmed",
        "subscribed",
        "unsubscribed",
        "bounced",
    }
    assert {k.value for k in MailKind} == {"marketing", "transactional"}


@pytest.mark.parametrize("status", list(ProfileStatus))
@pytest.mark.parametrize("kind", list(MailKind))
@pytest.mark.parametrize("email", [None, ""])
def test_no_mail_without_an_address(
    status: ProfileStatus, kind: MailKind, email: str | None
) -> None:
    assert refusal(status.value, email, kind.value) == "profile has no email"
