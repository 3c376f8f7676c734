"""``hub db upgrade``."""

from __future__ import annotations

from hub.config import Settings
from tests.cli.helpers import hub
from tests.conftest import hub_env


def test_db_upgrade_is_repeatable(settings: Settings) -> None:
    for _ in range(2):
        result = hub(["db", "upgrade"], hub_env(settings))
        assert result.returncode == 0, result.stderr
