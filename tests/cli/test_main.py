"""The ``hub`` group: every command group an operator uses is registered."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hub.cli.main import main


@pytest.mark.parametrize(
    ("command", "lists"),
    [
        ([], ["up", "serve", "worker", "scheduler", "db", "apikey", "rules", "connectors"]),
        (["db"], ["upgrade"]),
        (["apikey"], ["create"]),
        (["rules"], ["check", "test", "simulate", "backtest", "cancel"]),
        (["connectors"], ["types", "add", "apply", "list", "test", "run", "runs"]),
    ],
)
def test_every_command_is_registered(command: list[str], lists: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:")[1].split()
    assert set(lists) <= set(commands)
