"""Signed tokens of a mail: genuine ones read back, altered or forged ones as nothing."""

from __future__ import annotations

import pytest

from hub.config import Settings
from hub.mail.links import (
    Purpose,
    make_token,
    message_of_return_path,
    read_token,
    return_path,
    unsubscribe_url,
)

SETTINGS = Settings(secret_key="k" * 32, mail_from="News <news@shop.example>")


def test_a_token_reads_back_for_its_purpose_only() -> None:
    token = make_token(SETTINGS.secret_key, Purpose.CLICK, 42, 3)
    assert read_token(SETTINGS.secret_key, Purpose.CLICK, token, 2) == (42, 3)
    assert read_token(SETTINGS.secret_key, Purpose.OPEN, token, 2) is None  # another purpose
    assert read_token(SETTINGS.secret_key, Purpose.CLICK, token, 1) is None  # another shape
    assert read_token("another-key" * 3, Purpose.CLICK, token, 2) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature altered
        lambda t: make_token("k" * 32, Purpose.CLICK, 43, 3).split(".")[0] + "." + t.split(".")[1],
        lambda t: "",
        lambda t: "x" * 600,
        lambda t: "not-a-token",
        lambda t: t + "%00",
    ],
)
def test_an_altered_or_forged_token_is_nothing(change: object) -> None:
    token = make_token(SETTINGS.secret_key, Purpose.CLICK, 42, 3)
    assert read_token(SETTINGS.secret_key, Purpose.CLICK, change(token), 2) is None  # type: ignore[operator]


def test_a_payload_of_the_wrong_kind_is_nothing() -> None:
    import hashlib

    from itsdangerous import URLSafeSerializer

    signer = URLSafeSerializer(
        SETTINGS.secret_key, salt="hub.mail.open", signer_kwargs={"digest_method": hashlib.sha256}
    )
    for payload in (["1"], [True], [-1], [2**63], {"a": 1}, [1.5]):
        assert read_token(SETTINGS.secret_key, Purpose.OPEN, signer.dumps(payload), 1) is None


def test_unsubscribe_url_is_under_the_public_url() -> None:
    url = unsubscribe_url(SETTINGS.with_overrides(public_url="https://hub.example"), 7)
    assert url.startswith("https://hub.example/u/")
    token = url.rsplit("/", 1)[1]
    assert read_token(SETTINGS.secret_key, Purpose.UNSUBSCRIBE, token, 1) == (7,)


@pytest.mark.parametrize("row", [1, 35, 36, 123456789, 2**63 - 1])
def test_return_path_names_its_message_and_fits_a_local_part(row: int) -> None:
    address = return_path(SETTINGS, row)
    local, _, domain = address.rpartition("@")
    assert domain == "shop.example" and local.startswith("bounces+")
    assert len(local) <= 64 and local == local.lower()
    assert message_of_return_path(SETTINGS, address) == row
    assert message_of_return_path(SETTINGS, f"<{address.upper()}>") == row  # case changed


def test_a_forged_return_path_names_no_message() -> None:
    address = return_path(SETTINGS, 10)
    ident, mac = address.split("+", 1)[1].split("@")[0].split("-")
    assert message_of_return_path(SETTINGS, address.replace(f"{ident}-", "b-")) is None
    assert message_of_return_path(SETTINGS, address.replace(mac, "0" * 16)) is None
    assert message_of_return_path(SETTINGS, "bounces@shop.example") is None
    assert message_of_return_path(SETTINGS, "bounces+zzzzzzzzzzzzzz-00@shop.example") is None
    custom = SETTINGS.with_overrides(bounce_address="bounce@mx.shop.example")
    assert return_path(custom, 10).startswith("bounce+") and "@mx.shop.example" in return_path(
        custom, 10
    )
