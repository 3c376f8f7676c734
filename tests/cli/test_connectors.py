"""``hub connectors``: add, list, types, run, runs and apply, as an operator uses them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from hub.cli.main import main
from hub.config import Settings
from hub.integrations.secrets import SecretBox
from tests.conftest import hub_env
from tests.stand_ins.magento import MagentoStandIn, customer

ONE_BACKEND = pytest.mark.parametrize("backend", ["embedded"])


def _cli(settings: Settings, *args: str, input: str | None = None) -> Any:
    env = hub_env(settings)
    return CliRunner().invoke(main, list(args), env=env, input=input)


@ONE_BACKEND
def test_cli_add_reports_every_problem_and_saves_nothing(settings: Settings) -> None:
    result = _cli(
        settings, "connectors", "add", "erp", "exact", "--set", "division=abc",
        "--set", "colour=blue",
    )  # fmt: skip
    assert result.exit_code == 1
    for line in ("division: expected a whole number", "colour: unknown setting",
                 "client_id: is required", "client_secret: is required",
                 "refresh_token: is required", "nothing was saved"):  # fmt: skip
        assert line in result.output
    assert "erp" not in _cli(settings, "connectors", "list").output


@ONE_BACKEND
def test_cli_add_of_an_unknown_type_names_the_installed_ones(settings: Settings) -> None:
    result = _cli(settings, "connectors", "add", "shop", "magneto", "--set", "base_url=http://x")
    assert result.exit_code == 1
    assert "no connector named 'magneto' (installed: drupal, exact, magento)" in result.output
    assert "did you mean 'magento'?" in result.output
    assert "shop" not in _cli(settings, "connectors", "list").output


@ONE_BACKEND
def test_cli_add_list_and_secrets_masked(settings: Settings) -> None:
    result = _cli(
        settings, "connectors", "add", "erp", "exact", "--set", "division=12",
        "--set", "client_id=cid", "--secret", "client_secret", "--secret", "refresh_token",
        "--every", "900", input="very-secret-1\nvery-secret-2\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = _cli(settings, "connectors", "list", "--json")
    [instance] = json.loads(listed.output)
    assert instance["config"]["client_secret"] == "********"
    assert instance["config"]["division"] == 12 and instance["pull_interval_seconds"] == 900
    assert "very-secret" not in listed.output
    types = _cli(settings, "connectors", "types").output
    assert "client_secret (string, required, secret)" in types


@ONE_BACKEND
def test_cli_run_pulls_and_reports(settings: Settings) -> None:
    with MagentoStandIn() as shop:
        shop.put_customers(customer(1), customer(2))  # type: ignore[attr-defined]
        added = _cli(
            settings, "connectors", "add", "shop", "magento", "--set", f"base_url={shop.url}",
            "--set", f"access_token={shop.token}",  # type: ignore[attr-defined]
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        result = _cli(settings, "connectors", "run", "shop", "--stream", "customers")
        assert result.exit_code == 0, result.output
        assert "succeeded" in result.output and "2 new facts" in result.output
        runs = _cli(settings, "connectors", "runs", "shop")
        assert "customers  succeeded" in runs.output


@ONE_BACKEND
def test_cli_apply_reads_env_and_keeps_oauth_state_when_unchanged(
    settings: Settings, tmp_path: Any
) -> None:
    from hub.db import Database
    from hub.integrations.models import ConnectorState

    spec = tmp_path / "connectors.yaml"
    spec.write_text(
        "erp:\n  connector: exact\n  every: 900\n  settings:\n    division: 7\n"
        "    client_id: cid\n    client_secret: ${EXACT_SECRET}\n    refresh_token: r0\n"
        "bad:\n  connector: drupal\n  settings: {base_url: 'ftp://x', colour: red}\n"
    )
    env = hub_env(settings, EXACT_SECRET="from-the-env")
    result = CliRunner().invoke(main, ["connectors", "apply", str(spec)], env=env)
    assert result.exit_code == 1
    assert "erp: saved" in result.output
    assert "bad.settings.base_url: expected an http:// or https:// URL" in result.output
    assert "bad.settings.colour: unknown setting" in result.output

    db = Database(settings.resolved_database_url)
    with db.session() as s:  # a rotated refresh token, as a pull would have stored it
        state = s.scalar(select(ConnectorState))
        state.sealed = SecretBox(settings.secret_key).seal({"refresh_token": "r7"})
    again = CliRunner().invoke(main, ["connectors", "apply", str(spec)], env=env)
    assert "erp: saved" in again.output
    with db.session() as s:
        sealed = s.scalar(select(ConnectorState.sealed))
    assert SecretBox(settings.secret_key).open(sealed) == {"refresh_token": "r7"}
    missing = CliRunner().invoke(main, ["connectors", "apply", str(spec)], env=hub_env(settings))
    assert "environment variable EXACT_SECRET is not set" in missing.output
    db.dispose()
