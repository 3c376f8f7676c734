"""The connector framework: secrets at rest, the registry, HTTP rules, scheduling, CLI, API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from connectors import registry
from connectors.exceptions import RemoteRejected, RemoteUnavailable
from connectors.http import RemoteClient
from hub.cli.main import main
from hub.config import Settings
from hub.integrations.models import ConnectorInstance, ConnectorRun
from hub.integrations.pulls import schedule_pulls
from hub.integrations.secrets import SecretBox, SecretsUnreadable
from hub.runtime import Runtime
from tests.conftest import hub_env, run_jobs
from tests.stand_ins.base import Answer, Request, StandIn
from tests.stand_ins.hub_helpers import add_instance
from tests.stand_ins.magento import MagentoStandIn, customer

ONE_BACKEND = pytest.mark.parametrize("backend", ["embedded"])


def test_secret_box_round_trip_and_wrong_key() -> None:
    box = SecretBox("a-long-enough-secret-key")
    sealed = box.seal({"token": "s3cret-value"})
    assert "s3cret" not in sealed
    assert box.open(sealed) == {"token": "s3cret-value"}
    with pytest.raises(SecretsUnreadable, match="HUB_SECRET_KEY has changed"):
        SecretBox("another-secret-key-entirely").open(sealed)


def test_a_broken_plugin_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [
        EntryPoint("magento", "connectors.builtin.magento:MagentoConnector", registry.GROUP),
        EntryPoint("ghost", "no_such_module:Thing", registry.GROUP),
        EntryPoint("misnamed", "connectors.builtin.drupal:DrupalConnector", registry.GROUP),
        EntryPoint("notaconnector", "json:loads", registry.GROUP),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    found = registry.load()
    assert list(found.connectors) == ["magento"]
    assert "cannot import" in found.broken["ghost"]
    assert "differs from the class's name 'drupal'" in found.broken["misnamed"]
    assert "not a subclass" in found.broken["notaconnector"]
    with pytest.raises(registry.UnknownConnector, match="installed: magento"):
        found.get("ghost")


class Flaky(StandIn):
    def handle(self, req: Request) -> Answer:
        return Answer(200, {"ok": True})


@pytest.fixture
def flaky() -> Iterator[Flaky]:
    with Flaky() as server:
        yield server  # type: ignore[misc]


@pytest.mark.parametrize(
    ("answer", "error", "retry_after"),
    [
        (Answer(500, b"oops"), RemoteUnavailable, None),
        (Answer(503, b"", {"Retry-After": "42"}), RemoteUnavailable, 42.0),
        (Answer(429, b"", {"Retry-After": "90"}), RemoteUnavailable, 90.0),
        (Answer(404, b"gone"), RemoteRejected, None),
        (Answer(200, b"", delay=0.5), RemoteUnavailable, None),
    ],
)
def test_remote_answers_are_sorted(
    flaky: Flaky, answer: Answer, error: type, retry_after: Any
) -> None:
    flaky.fail_next("/x", answer)
    client = RemoteClient(flaky.url, timeout=0.2, max_inline_wait=1)
    with pytest.raises(error) as caught:
        client.get_json("/x")
    assert getattr(caught.value, "retry_after", None) == retry_after


def test_short_rate_limit_waits_are_slept_through(flaky: Flaky) -> None:
    slept: list[float] = []
    flaky.fail_next("/x", Answer(429, b"", {"Retry-After": "1"}))
    client = RemoteClient(flaky.url, max_inline_wait=2, sleep=slept.append)
    assert client.get_json("/x") == {"ok": True}
    assert slept == [1.0] and flaky.hits("/x") == 2


def test_timeouts_and_refused_connections_are_retriable() -> None:
    with pytest.raises(RemoteUnavailable, match="cannot connect"):
        RemoteClient("http://127.0.0.1:9", timeout=0.5).get_json("/x")


def test_schedule_starts_due_runs_once(hub_runtime: Runtime) -> None:
    with MagentoStandIn() as shop:
        shop.put_customers(customer(1))  # type: ignore[attr-defined]
        add_instance(hub_runtime, "shop", "magento", base_url=shop.url, access_token=shop.token)  # type: ignore[attr-defined]
        add_instance(hub_runtime, "manual", "magento", base_url=shop.url)  # type: ignore[attr-defined]
        with hub_runtime.db.session() as s:
            inst = s.scalar(select(ConnectorInstance).where(ConnectorInstance.name == "shop"))
            inst.pull_interval_seconds = 300
        started = schedule_pulls()
        assert len(started) == 2  # customers and orders of "shop"; "manual" has no schedule
        assert schedule_pulls() == []  # running: not started twice
        run_jobs(hub_runtime)
        assert schedule_pulls() == []  # finished, but the interval has not passed
        with hub_runtime.db.session() as s:
            statuses = sorted(r.status for r in s.scalars(select(ConnectorRun)))
        assert statuses == ["succeeded", "succeeded"]


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
def test_api_lists_instances_and_runs(
    client: Any, auth: dict[str, str], hub_runtime: Runtime
) -> None:
    with MagentoStandIn() as shop:
        shop.put_customers(customer(1))  # type: ignore[attr-defined]
        add_instance(hub_runtime, "shop", "magento", base_url=shop.url, access_token=shop.token)  # type: ignore[attr-defined]
        assert client.get("/connectors").status_code == 401
        listed = client.get("/connectors", headers=auth).get_json()["instances"]
        assert listed[0]["config"]["access_token"] == "********"
        assert shop.token not in json.dumps(listed)  # type: ignore[attr-defined]

        assert client.post("/connectors/shop/runs", json={}).status_code == 401
        started = client.post("/connectors/shop/runs", json={"stream": "customers"}, headers=auth)
        assert started.status_code == 202
        run_jobs(hub_runtime)
        runs = client.get("/connectors/shop/runs", headers=auth).get_json()["runs"]
        assert runs[0]["status"] == "succeeded" and runs[0]["facts_accepted"] == 1
        bad = client.post("/connectors/shop/runs", json={"stream": "nope"}, headers=auth)
        assert bad.status_code == 400 and "no stream 'nope'" in bad.get_json()["message"]


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
