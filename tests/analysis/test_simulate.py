"""Simulation, reload, timeline, back-test and scenarios: an analyst's tools, no side effects."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import func, select

from hub.actions import ACTIONS
from hub.analysis.backtest import backtest
from hub.analysis.simulate import parse_since
from hub.cli.main import main
from hub.models import ActionRun, Fact, Message, Profile, RuleFiring
from hub.queue import ALL_QUEUES, queue
from hub.rules.engine import RuleEngine
from hub.rules.reader import load_rules
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from tests.conftest import ROOT, run_jobs
from tests.rules.test_language import fact, post

ORDER = {"type": "order.placed", "profile": {"email": "ann@example.com"}, "data": {"total": 80}}


def counts(rt: Runtime) -> tuple[int, ...]:
    with rt.db.session() as s:
        rows = tuple(
            s.scalar(select(func.count()).select_from(m))
            for m in (Fact, Profile, RuleFiring, ActionRun, Message)
        )
    return rows + tuple(queue(q, rt.redis).count for q in ALL_QUEUES)


def test_simulate_needs_a_key(client: Any) -> None:
    assert client.post("/api/v1/rules/simulate", json={"fact": ORDER}).status_code == 401


def test_simulate_tells_what_would_fire_and_why_not_with_no_side_effect(
    client: Any, auth: dict[str, str], hub_runtime: Runtime
) -> None:
    before = counts(hub_runtime)
    answer = client.post(
        "/api/v1/rules/simulate",
        json={
            "fact": {**ORDER, "type": "order.shipped", "data": {"country": "NL"}},
            "profile": {"status": "subscribed", "fields": {"first_name": "Ann"}},
            "now": "2026-02-01T10:00:00Z",
        },
        headers=auth,
    )
    assert answer.status_code == 200, answer.json
    body = answer.json
    fired = {f["rule"]: f for f in body["fired"]}
    assert set(fired) == {"tag-every-shopper", "ask-for-a-review"}
    (review,) = fired["ask-for-a-review"]["actions"]
    assert review["action"] == "send_mail" and review["delay_seconds"] == 7 * 86400
    assert review["run_at"] == "2026-02-08T10:00:00+00:00"
    assert review["unless"] == [
        "profile.status ne 'subscribed'",
        "history of order.refunded since the trigger: count gte 1",
    ]
    reasons = {n["rule"]: n["reason"] for n in body["not_fired"]}
    assert reasons["thank-you-for-your-order"] == (
        "fact type 'order.shipped' does not match 'order.placed'"
    )
    assert counts(hub_runtime) == before


def test_simulate_names_the_first_failing_condition(client: Any, auth: dict[str, str]) -> None:
    body = client.post(
        "/api/v1/rules/simulate", json={"fact": {**ORDER, "data": {"total": 20}}}, headers=auth
    ).json
    reasons = {n["rule"]: n["reason"] for n in body["not_fired"]}
    assert reasons["thank-you-for-your-order"] == "condition failed: data.total gte 50 (it is 20)"
    assert [f["rule"] for f in body["fired"]] == ["tag-every-shopper"]


def test_simulate_rejects_a_bad_fact_naming_the_field(client: Any, auth: dict[str, str]) -> None:
    answer = client.post(
        "/api/v1/rules/simulate", json={"fact": {"type": "Bad Type", "profile": {}}}, headers=auth
    )
    assert answer.status_code == 400
    fields = {e["field"] for e in answer.json["errors"]}
    assert fields == {"fact.type", "fact.profile"}


def test_reload_loads_only_a_valid_rule_set(
    client: Any, auth: dict[str, str], rules_dir: Path
) -> None:
    assert client.post("/api/v1/rules/reload").status_code == 401
    good = client.post("/api/v1/rules/reload", headers=auth)
    assert good.status_code == 200
    version = good.json["version"]
    orders = rules_dir / "orders.yaml"
    orders.write_text(orders.read_text().replace("data.total: {gte: 50}", "data.total: {gte: 5"))
    bad = client.post("/api/v1/rules/reload", headers=auth)
    assert bad.status_code == 422 and bad.json["running_version"] == version
    (problem,) = bad.json["errors"]
    assert problem["file"] == str(orders) and problem["message"].startswith("YAML")
    # the last valid set keeps answering
    body = client.post("/api/v1/rules/simulate", json={"fact": ORDER}, headers=auth).json
    assert body["ruleset_version"] == version and "rules_warning" in body
    orders.write_text(orders.read_text().replace("{gte: 5\n", "{gte: 500}\n"))
    fixed = client.post("/api/v1/rules/reload", headers=auth)
    assert fixed.status_code == 200 and fixed.json["version"] != version


def test_a_worker_picks_up_a_valid_change_and_keeps_the_last_valid_set(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    drain_pending()
    first = hub_runtime.engine.ruleset.version
    orders = rules_dir / "orders.yaml"
    text = orders.read_text()
    orders.write_text(
        text.replace("name: tag-every-shopper", "name: tag-every-shopper\n    prio: 1")
    )
    post(hub_runtime, ORDER)
    drain_pending()
    assert hub_runtime.engine.ruleset.version == first  # invalid: still running
    error = hub_runtime.redis.get("hub:rules:error").decode()
    assert f"{orders}:" in error and "unknown key 'prio'" in error
    orders.write_text(text.replace("data.total: {gte: 50}", "data.total: {gte: 500}"))
    (fid,) = post(hub_runtime, {**ORDER, "profile": {"email": "bo@example.com"}})
    drain_pending()
    assert hub_runtime.engine.ruleset.version != first
    assert hub_runtime.redis.get("hub:rules:error") is None
    with hub_runtime.db.session() as s:
        firing = s.scalars(select(RuleFiring).where(RuleFiring.fact_id == fid)).all()
    assert [(f.rule_name, f.ruleset_version) for f in firing] == [
        ("tag-every-shopper", hub_runtime.engine.ruleset.version)
    ]


def test_timeline_shows_why_a_contact_got_a_mail(
    client: Any, auth: dict[str, str], hub_runtime: Runtime
) -> None:
    (fid,) = post(hub_runtime, ORDER)
    drain_pending()
    run_jobs(hub_runtime)
    with hub_runtime.db.session() as s:
        pid = s.scalar(select(Profile.id))
    assert client.get(f"/api/v1/profiles/{pid}/timeline").status_code == 401
    assert client.get("/api/v1/profiles/999999/timeline", headers=auth).status_code == 404
    events = client.get(f"/api/v1/profiles/{pid}/timeline", headers=auth).json["events"]
    kinds = [(e["kind"], e.get("rule") or e.get("type")) for e in events]
    assert kinds[0] == ("fact", "order.placed")
    assert ("firing", "thank-you-for-your-order") in kinds
    mail = next(e for e in events if e["kind"] == "mail")
    assert (mail["rule"], mail["status"], mail["fact_id"]) == (
        "thank-you-for-your-order",
        "sent",
        fid,
    )
    firing = next(
        e for e in events if e["kind"] == "firing" and e["rule"] == "thank-you-for-your-order"
    )
    assert firing["ruleset_version"] == hub_runtime.engine.ruleset.version
    assert kinds.index(("firing", "thank-you-for-your-order")) < events.index(mail)


def test_backtest_reports_fired_and_would_fire_per_rule(
    hub_runtime: Runtime, rules_dir: Path, tmp_path: Path
) -> None:
    post(
        hub_runtime,
        *[
            fact("order.placed", email=f"p{i}@example.com", total=t)
            for i, t in enumerate((20, 60, 150, 300))
        ],
    )
    drain_pending()
    before = counts(hub_runtime)
    changed = tmp_path / "changed"
    shutil.copytree(rules_dir, changed)
    orders = changed / "orders.yaml"
    orders.write_text(orders.read_text().replace("data.total: {gte: 50}", "data.total: {gte: 100}"))
    report = backtest(hub_runtime.db, RuleEngine(load_rules(changed, ACTIONS)), parse_since("1d"))
    rows = {r["rule"]: r for r in report["rules"]}
    assert report["facts"] == 4
    thanks = rows["thank-you-for-your-order"]
    assert (
        thanks["fired"],
        thanks["would_fire"],
        thanks["newly_firing"],
        thanks["no_longer_firing"],
    ) == (3, 2, 0, 1)
    assert thanks["examples"]["no_longer_firing"] == [2]
    assert (rows["tag-every-shopper"]["fired"], rows["tag-every-shopper"]["would_fire"]) == (4, 4)
    assert counts(hub_runtime) == before


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


def test_shipped_scenarios_pass_and_a_wrong_one_fails(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["rules", "test", "--rules", str(ROOT / "rules")])
    assert ok.exit_code == 0, ok.output
    assert "0 failed" in ok.output
    (tmp_path / "wrong.yaml").write_text(
        "scenarios:\n"
        "  - name: expects a mail that the unless stops\n"
        "    timeline:\n"
        "      - {at: 0m, fact: {type: cart.abandoned, data: {items: [x]}}}\n"
        "      - {at: 1h, fact: {type: order.placed, data: {total: 5}}}\n"
        "    expect:\n"
        "      - {rule: remind-abandoned-carts, action: send_mail, at: 1d}\n"
    )
    wrong = runner.invoke(main, ["rules", "test", str(tmp_path), "--rules", str(ROOT / "rules")])
    assert wrong.exit_code == 1
    assert f"FAIL {tmp_path}/wrong.yaml:2: expects a mail that the unless stops" in wrong.output
    assert "skipped (unless history of order.placed since the trigger" in wrong.output


def test_rules_endpoint_lists_the_running_set(client: Any, auth: dict[str, str]) -> None:
    assert client.get("/api/v1/rules").status_code == 401
    body = client.get("/api/v1/rules", headers=auth).json
    names = [r["name"] for r in body["rules"]]
    assert "thank-you-for-your-order" in names and body["errors"] == []
    assert body["version"] == load_rules(ROOT / "rules", ACTIONS).version
