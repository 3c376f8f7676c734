"""Settings come from HUB_* variables through strict parsers that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import from_env
from hub.exceptions import ConfigError


def test_embedded_defaults(tmp_path: Path) -> None:
    settings = from_env({"HUB_HOME": str(tmp_path)})
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'hub.sqlite3').resolve()}"
    assert settings.redis_url is None and settings.smtp_url is None
    assert settings.rules_dir == Path("./rules")
    assert settings.outbox_dir == tmp_path / "outbox"
    # a secret is made once per installation and kept private
    assert from_env({"HUB_HOME": str(tmp_path)}).secret_key == settings.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"HUB_DATABASE_URL": "mysql://x"}, "HUB_DATABASE_URL"),
        ({"HUB_REDIS_URL": "http://x"}, "HUB_REDIS_URL"),
        ({"HUB_SMTP_URL": "http://x"}, "HUB_SMTP_URL"),
        ({"HUB_SECRET_KEY": "short"}, "HUB_SECRET_KEY"),
        ({"HUB_FACT_BATCH_SIZE": "many"}, "HUB_FACT_BATCH_SIZE"),
        ({"HUB_MAX_FACTS_PER_REQUEST": "0"}, "HUB_MAX_FACTS_PER_REQUEST"),
        ({"HUB_PUBLIC_URL": "ftp://hub.example"}, "HUB_PUBLIC_URL"),
        ({"HUB_BOUNCE_ADDRESS": "Bounces <b@x.example>"}, "HUB_BOUNCE_ADDRESS"),
        ({"HUB_BOUNCE_ADDRESS": "nobody"}, "HUB_BOUNCE_ADDRESS"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, env: dict, variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_env({"HUB_HOME": str(tmp_path)} | env)
    assert info.value.variable == variable
    assert str(info.value).startswith(variable)


def test_production_settings(tmp_path: Path) -> None:
    settings = from_env(
        {
            "HUB_HOME": str(tmp_path),
            "HUB_DATABASE_URL": "postgresql+psycopg://hub@db/hub",
            "HUB_REDIS_URL": "redis://cache:6379/0",
            "HUB_SMTP_URL": "smtps://user:pw@relay:465",
            "HUB_SECRET_KEY": "x" * 32,
        }
    )
    assert settings.resolved_database_url == "postgresql+psycopg://hub@db/hub"
    assert "x" * 32 not in repr(settings)  # the secret is kept out of logs


def test_mail_loop_settings(tmp_path: Path) -> None:
    defaults = from_env({"HUB_HOME": str(tmp_path)})
    assert defaults.public_url == "http://127.0.0.1:8000" and defaults.bounce_address is None
    settings = from_env(
        {
            "HUB_HOME": str(tmp_path),
            "HUB_PUBLIC_URL": "https://hub.example.com/",
            "HUB_BOUNCE_ADDRESS": "bounces@mx.example.com",
            "HUB_LIST_ID": "News <news.example.com>",
        }
    )
    assert settings.public_url == "https://hub.example.com"  # no trailing slash in links
    assert settings.bounce_address == "bounces@mx.example.com"
    assert settings.list_id == "News <news.example.com>"
