"""The facts the hub raises itself: one schema per type, the same whoever raises it.

An action, the evaluator and the profile service (REST and SOAP) raise these; rules read
their ``data`` (``data.previous_status``, ``data.changed``), so a field has one name
whichever door the change came through. Every one also carries ``data.caused_by`` when an
action or the evaluator raised it (``fact``, ``rule``, ``depth``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

HUB_SOURCE = "hub"  # the ``source`` of facts the hub raises itself


class OwnFact(BaseModel):
    """The data of one fact type the hub raises; ``TYPE`` names it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    TYPE: ClassVar[str]

    def data(self) -> dict[str, Any]:
        """The fact's ``data``, as rules see it (fields left unset are absent)."""
        return self.model_dump(mode="json", exclude_none=True)


class ProfileCreated(OwnFact):
    """A contact the hub did not know: created by a fact, an action or an API call.

    Created through the REST or SOAP API, it also tells what the profile was created with.
    """

    TYPE = "profile.created"
    fields: dict[str, Any] | None = None
    changed: list[str] | None = None
    tags: list[str] | None = None


class ProfileUpdated(OwnFact):
    """Fields or tags of a profile changed; ``changed`` names them (``tags`` for tags).

    Changed through the REST or SOAP API, ``fields`` holds the values sent.
    """

    TYPE = "profile.updated"
    changed: list[str]
    fields: dict[str, Any] | None = None


class ProfileTagged(OwnFact):
    """Tags were added to or removed from a profile through the REST or SOAP API."""

    TYPE = "profile.tagged"
    added: list[str]
    removed: list[str]


class ProfileDeleted(OwnFact):
    """A profile was deleted through the REST or SOAP API; the record of it."""

    TYPE = "profile.deleted"
    id: int


class ProfileUnsubscribed(OwnFact):
    """Marketing consent withdrawn; ``previous_status`` is the status before."""

    TYPE = "profile.unsubscribed"
    previous_status: str


class ProfileSubscribed(OwnFact):
    """Marketing consent given, by a source's statement (hub.profiles.consent), with its proof.

    ``previous_status`` is the status before (``unconfirmed`` for a first consent); ``explicit``
    whether the source said the contact opted in just now.
    """

    TYPE = "profile.subscribed"
    previous_status: str
    source: str
    explicit: bool
    proof: str


class ProfileResubscribed(OwnFact):
    """Marketing consent given again; ``previous_status`` is the status before."""

    TYPE = "profile.resubscribed"
    previous_status: str


class MailSent(OwnFact):
    """A mail was handed to the relay (or written to the outbox)."""

    TYPE = "mail.sent"
    template: str
    subject: str
    kind: str


class MailResult(OwnFact):
    """What came back of one mail: which message (its ``Message-ID``), from which template.

    ``campaign`` names the campaign the mail belonged to, if any.
    """

    message_id: str
    template: str
    campaign: str | None = None


class MailOpened(MailResult):
    """The open pixel of a mail was fetched; ``machine`` when a proxy or scanner did it."""

    TYPE = "mail.opened"
    machine: bool = False
    machine_reason: str | None = None


class MailClicked(MailResult):
    """A tracked link of a mail was followed (``link``: its number in the mail, from 0)."""

    TYPE = "mail.clicked"
    link: int
    url: str
    machine: bool = False
    machine_reason: str | None = None


class MailBounced(MailResult):
    """A bounce came back: ``kind`` hard, soft or block, the RFC 3463 ``code``, the text."""

    TYPE = "mail.bounced"
    kind: str
    code: str | None = None
    diagnostic: str | None = None


class MailComplained(MailResult):
    """The recipient reported the mail as spam (an ARF feedback report, RFC 5965)."""

    TYPE = "mail.complained"


OWN_FACTS: dict[str, type[OwnFact]] = {
    cls.TYPE: cls
    for cls in (
        ProfileCreated,
        ProfileUpdated,
        ProfileTagged,
        ProfileDeleted,
        ProfileUnsubscribed,
        ProfileSubscribed,
        ProfileResubscribed,
        MailSent,
        MailOpened,
        MailClicked,
        MailBounced,
        MailComplained,
    )
}
