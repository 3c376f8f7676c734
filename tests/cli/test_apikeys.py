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


def test_apikey_list_shows_scopes_never_keys_and_revoke_stops_a_key(settings: Settings) -> None:
    env = hub_env(settings)
    shop = hub(["apikey", "create", "shop", "--source", "magento"], env)
    assert shop.returncode == 0, shop.stderr
    assert hub(["apikey", "create", "crm"], env).returncode == 0
    key = shop.stdout.strip().splitlines()[-1]
    listed = hub(["apikey", "list"], env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PREFIX", "CREATED", "REVOKED", "SOURCES"]
    shop_line = next(line for line in lines if line.startswith("shop "))
    assert shop_line.split()[1] == key[:12] and shop_line.endswith("magento")
    assert key not in listed.stdout  # the prefix only
    revoked = hub(["apikey", "revoke", "shop"], env)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    shop_line = next(
        line
        for line in hub(["apikey", "list"], env).stdout.splitlines()
        if line.startswith("shop ")
    )
    assert shop_line.split()[4] != "-"  # a revocation date
    again = hub(["apikey", "revoke", "shop"], env)
    assert again.returncode != 0 and "no active API key named 'shop'" in again.stderr


def test_apikey_create_refuses_a_bad_source(settings: Settings) -> None:
    result = hub(["apikey", "create", "x", "--source", "Not A Source"], hub_env(settings))
    assert result.returncode != 0 and "--source" in result.stderr
