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
        """The fact's ``data``, as rules see it."""
        return self.model_dump(mode="json")


class ProfileCreated(OwnFact):
    """A contact the hub did not know: created by a fact, an action or an API call."""

    TYPE = "profile.created"


class ProfileUpdated(OwnFact):
    """Fields or tags of a profile changed; ``changed`` names them (``tags`` for tags)."""

    TYPE = "profile.updated"
    changed: list[str]


class ProfileUnsubscribed(OwnFact):
    """Marketing consent withdrawn; ``previous_status`` is the status before."""

    TYPE = "profile.unsubscribed"
    previous_status: str


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


OWN_FACTS: dict[str, type[OwnFact]] = {
    cls.TYPE: cls
    for cls in (ProfileCreated, ProfileUpdated, ProfileUnsubscribed, ProfileResubscribed, MailSent)
}
