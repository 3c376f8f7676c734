"""What every ``hub`` command shares: a bad setting ends the command naming its variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli.main import main
from hub.config import Settings
from tests.cli.helpers import hub
from tests.conftest import hub_env


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_bad_setting_is_named(settings: Settings) -> None:
    result = hub(["db", "upgrade"], hub_env(settings, HUB_SMTP_URL="http://relay"))
    assert result.returncode != 0
    assert "HUB_SMTP_URL" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("HUB_DATABASE_URL", "mysql://db/hub", "scheme 'mysql' is not one of sqlite, postgresql"),
        ("HUB_REDIS_URL", "http://cache", "scheme 'http' is not one of redis, rediss, unix"),
        ("HUB_SECRET_KEY", "short", "must be at least 16 characters long"),
        ("HUB_FACT_BATCH_SIZE", "many", "expected a whole number, got 'many'"),
        ("HUB_MAX_FACTS_PER_REQUEST", "0", "expected a number above 0, got 0"),
        ("HUB_PULL_RETRY_DELAYS", "30,soon", "expected comma-separated whole seconds"),
    ],
)
def test_read_settings_names_the_bad_variable_and_exits_1(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("HUB_")}
    env |= {"HUB_HOME": str(tmp_path), variable: value}
    result = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert result.exit_code == 1
    assert f"Error: configuration: {variable}: {says}" in result.output
    assert not (tmp_path / "hub.sqlite3").exists()  # nothing was done
