"""Connector secrets at rest: sealed, and unreadable under another key."""

from __future__ import annotations

import pytest

from hub.integrations.secrets import SecretBox, SecretsUnreadable


def test_secret_box_round_trip_and_wrong_key() -> None:
    box = SecretBox("a-long-enough-secret-key")
    sealed = box.seal({"token": "s3cret-value"})
    assert "s3cret" not in sealed
    assert box.open(sealed) == {"token": "s3cret-value"}
    with pytest.raises(SecretsUnreadable, match="HUB_SECRET_KEY has changed"):
        SecretBox("another-secret-key-entirely").open(sealed)
