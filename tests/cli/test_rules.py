"""``hub rules check``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli.main import main
from hub.config import Settings
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from tests.analysis.test_simulate import ORDER
from tests.cli.helpers import hub
from tests.conftest import ROOT, hub_env
from tests.rules.test_language import post


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_rules_check_accepts_the_shipped_rules(settings: Settings) -> None:
    result = hub(["rules", "check", str(ROOT / "rules")], hub_env(settings))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_cli_backtest_and_simulate(hub_runtime: Runtime, rules_dir: Path) -> None:
    post(hub_runtime, ORDER)
    drain_pending()
    from tests.conftest import hub_env

    env = hub_env(hub_runtime.settings)
    runner = CliRunner()
    result = runner.invoke(main, ["rules", "backtest", "--since", "2d", "--json"], env=env)
    assert result.exit_code == 0, result.output
    rows = {r["rule"]: r for r in json.loads(result.output)["rules"]}
    assert rows["thank-you-for-your-order"]["would_fire"] == 1
    bad = runner.invoke(main, ["rules", "backtest", "--since", "last week"], env=env)
    assert bad.exit_code == 2 and "--since" in bad.output
    sim = runner.invoke(main, ["rules", "simulate", json.dumps(ORDER), "--offline"], env=env)
    assert sim.exit_code == 0, sim.output
    assert {f["rule"] for f in json.loads(sim.output)["fired"]} == {
        "thank-you-for-your-order",
        "tag-every-shopper",
    }
