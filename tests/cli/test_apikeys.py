"""``hub apikey create``."""

from __future__ import annotations

from sqlalchemy import select

from hub.config import Settings
from hub.db import Database
from hub.models import ApiKey
from tests.cli.helpers import hub
from tests.conftest import hub_env


def test_apikey_create_prints_the_key_alone_on_the_last_line(settings: Settings) -> None:
    result = hub(["apikey", "create", "shop"], hub_env(settings))
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("hub_") and " " not in key
    db = Database(settings.resolved_database_url)
    with db.session() as session:
        stored = session.scalar(select(ApiKey).where(ApiKey.name == "shop"))
        assert stored is not None and key not in stored.key_hash  # only a digest is kept
    db.dispose()
    again = hub(["apikey", "create", "shop"], hub_env(settings))
    assert again.returncode != 0 and "exists already" in again.stderr
