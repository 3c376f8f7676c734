"""The facts the hub raises itself: one fixed data schema per type."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hub.facts.own import (
    OWN_FACTS,
    MailBounced,
    MailClicked,
    MailComplained,
    MailOpened,
    MailSent,
    OwnFact,
    ProfileCreated,
    ProfileDeleted,
    ProfileResubscribed,
    ProfileSubscribed,
    ProfileTagged,
    ProfileUnsubscribed,
    ProfileUpdated,
)

CASES = [
    (ProfileCreated, {}),
    (ProfileCreated, {"fields": {"name": "Ann"}, "changed": ["name"], "tags": ["vip"]}),
    (ProfileUpdated, {"changed": ["name", "tags"]}),
    (ProfileUpdated, {"changed": ["name"], "fields": {"name": "Ann"}}),
    (ProfileTagged, {"added": ["vip"], "removed": []}),
    (ProfileDeleted, {"id": 7}),
    (ProfileUnsubscribed, {"previous_status": "subscribed"}),
    (ProfileResubscribed, {"previous_status": "unsubscribed"}),
    (
        ProfileSubscribed,
        {"previous_status": "unconfirmed", "source": "shop", "explicit": False, "proof": "box"},
    ),
    (MailSent, {"template": "welcome", "subject": "Hi", "kind": "marketing"}),
    (MailOpened, {"message_id": "<a@x>", "template": "welcome", "machine": False}),
    (
        MailClicked,
        {
            "message_id": "<a@x>",
            "template": "news",
            "campaign": "spring",
            "link": 2,
            "url": "https://shop.example/sale",
            "machine": True,
            "machine_reason": "link scanner",
        },
    ),
    (MailBounced, {"message_id": "<a@x>", "template": "news", "kind": "hard", "code": "5.1.1"}),
    (MailComplained, {"message_id": "<a@x>", "template": "news"}),
]


def test_every_type_is_registered_under_its_name() -> None:
    assert OWN_FACTS == {cls.TYPE: cls for cls, _ in CASES}
    assert set(OWN_FACTS) == {
        "profile.created",
        "profile.updated",
        "profile.tagged",
        "profile.deleted",
        "profile.unsubscribed",
        "profile.resubscribed",
        "profile.subscribed",
        "mail.sent",
        "mail.opened",
        "mail.clicked",
        "mail.bounced",
        "mail.complained",
    }


@pytest.mark.parametrize(("cls", "data"), CASES)
def test_data_is_what_rules_read(cls: type[OwnFact], data: dict[str, Any]) -> None:
    assert cls(**data).data() == data


@pytest.mark.parametrize(("cls", "data"), [c for c in CASES if c[1]])
def test_a_missing_field_is_refused(cls: type[OwnFact], data: dict[str, Any]) -> None:
    required = [name for name, f in cls.model_fields.items() if f.is_required()]
    for name in required:
        with pytest.raises(ValidationError, match=name):
            cls(**{k: v for k, v in data.items() if k != name})


@pytest.mark.parametrize(("cls", "data"), CASES)
def test_an_unknown_field_is_refused(cls: type[OwnFact], data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="previous_satus"):
        cls(**data, previous_satus="subscribed")


def test_a_raised_fact_cannot_be_changed() -> None:
    fact = ProfileUpdated(changed=["name"])
    with pytest.raises(ValidationError):
        fact.changed = ["other"]  # type: ignore[misc]
