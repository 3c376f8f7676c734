"""The plugin contract itself: configuration checked at construction, masked, requests read."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from connectors.base import (
    SECRET_MASK,
    ConfigField,
    Connector,
    FieldKind,
    MemoryStateStore,
    WebhookRequest,
)
from connectors.exceptions import ConfigInvalid, NotSupported, PayloadInvalid


class Shop(Connector):
    """A connector of every setting kind, pushing nothing and pulling nothing."""

    name = "shop"
    config_fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField("base_url", FieldKind.URL, required=True),
        ConfigField("token", secret=True, required=True),
        ConfigField("page_size", FieldKind.INTEGER, default=100, minimum=1),
        ConfigField("ratio", FieldKind.NUMBER, default=0.5),
        ConfigField("sandbox", FieldKind.BOOLEAN, default=False),
        ConfigField("region", choices=("eu", "us"), default="eu"),
        ConfigField("key_pem", FieldKind.TEXT),
    )


GOOD = {"base_url": "https://shop.example.com/", "token": "t0ken"}


def test_defaults_are_applied_and_values_coerced() -> None:
    shop = Shop("s1", {**GOOD, "page_size": "50", "sandbox": "yes", "key_pem": " -----\n"})
    assert shop.config == {
        "base_url": "https://shop.example.com",  # trailing slash dropped
        "token": "t0ken",
        "page_size": 50,
        "ratio": 0.5,
        "sandbox": True,
        "region": "eu",
        "key_pem": " -----\n",  # text is kept as written, not stripped
    }


def test_every_problem_is_reported_at_once_naming_the_setting() -> None:
    with pytest.raises(ConfigInvalid) as caught:
        Shop(
            "s1",
            {
                "base_url": "ftp://shop",
                "page_size": 0,
                "ratio": "much",
                "sandbox": "maybe",
                "region": "asia",
                "colour": "blue",
            },
        )
    found = {(p.field, p.message) for p in caught.value.problems}
    assert found == {
        ("colour", "unknown setting"),
        ("token", "is required"),
        ("base_url", "expected an http:// or https:// URL"),
        ("page_size", "must be at least 1"),
        ("ratio", "expected a number"),
        ("sandbox", "expected true or false"),
        ("region", "expected one of eu, us"),
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "expected a whole number"),
        ("2.5", "expected a whole number"),
        ([1], "expected a whole number"),
    ],
)
def test_an_integer_setting_takes_whole_numbers_only(value: Any, message: str) -> None:
    with pytest.raises(ConfigInvalid, match=message):
        Shop("s1", {**GOOD, "page_size": value})


def test_secrets_are_masked_in_what_is_shown_and_listed_in_the_schema() -> None:
    shop = Shop("s1", GOOD)
    assert shop.public_config()["token"] == SECRET_MASK
    assert shop.public_config()["base_url"] == "https://shop.example.com"
    assert Shop.secret_fields() == frozenset({"token"})
    assert Shop.schema()["token"] == {"type": "string", "required": True, "secret": True}
    assert Shop.schema()["region"]["enum"] == ["eu", "us"]


def test_a_connector_without_push_or_pull_says_so() -> None:
    shop = Shop("s1", GOOD)
    assert not shop.supports_push and not shop.supports_pull
    with pytest.raises(NotSupported):
        shop.verify(WebhookRequest(b"{}"))
    with pytest.raises(NotSupported):
        shop.test_connection()


def test_a_webhook_request_reads_headers_in_any_case_and_its_json() -> None:
    request = WebhookRequest(
        b'{"a": 1}', headers={"content-TYPE": "Application/JSON; charset=utf-8"}
    )
    assert request.header("Content-Type") == "Application/JSON; charset=utf-8"
    assert request.header("X-Missing") is None
    assert request.content_type == "application/json"
    assert request.json() == {"a": 1}
    with pytest.raises(PayloadInvalid, match="not valid JSON"):
        WebhookRequest(b"{nope").json()


def test_the_memory_state_store_applies_changes_and_hands_out_copies() -> None:
    store = MemoryStateStore({"token": "a"})
    assert store.update(lambda s: {**s, "token": "b"}) == {"token": "b"}
    copy = store.load()
    copy["token"] = "changed by the caller"
    assert store.load() == {"token": "b"}
