"""The ``hub`` command as an operator uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.config import Settings
from hub.db import Database
from hub.models import ApiKey
from tests.conftest import ROOT, hub_env


def hub(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


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


def test_db_upgrade_is_repeatable(settings: Settings) -> None:
    for _ in range(2):
        result = hub(["db", "upgrade"], hub_env(settings))
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_rules_check_accepts_the_shipped_rules(settings: Settings) -> None:
    result = hub(["rules", "check", str(ROOT / "rules")], hub_env(settings))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


BROKEN = """\
rules:
  - name: broken
    when:
      fact: order.placed
      all:
        - data.total: {greater: 5}
    then:
      - send_mail: {template: thank-you, subject: hi}
"""


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_invalid_rules_are_reported_with_file_and_line_and_the_worker_does_not_start(
    settings: Settings, rules_dir: Path
) -> None:
    broken = rules_dir / "broken.yaml"
    broken.write_text(BROKEN)
    check = hub(["rules", "check"], hub_env(settings))
    assert check.returncode == 1
    assert f"{broken}:6:" in check.stderr and "greater" in check.stderr
    worker = hub(["worker", "--burst"], hub_env(settings))
    assert worker.returncode != 0
    assert f"{broken}:6:" in worker.stderr


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_bad_setting_is_named(settings: Settings) -> None:
    result = hub(["db", "upgrade"], hub_env(settings, HUB_SMTP_URL="http://relay"))
    assert result.returncode != 0
    assert "HUB_SMTP_URL" in result.stderr
