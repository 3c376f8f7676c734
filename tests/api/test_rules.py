"""``/api/v1/rules``: simulate's input checks, the rule list's details, and a rule directory
that was never valid. (Simulation and reload themselves: tests/analysis/test_simulate.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.actions import ACTIONS
from hub.rules.reader import load_rules
from tests.conftest import ROOT

ORDER = {
    "type": "order.placed",
    "profile": {"email": "ann@example.com", "consent": {"status": "subscribed", "proof": "box"}},
    "data": {"total": 80},
}
BROKEN = "rules:\n  - name: broken\n    when: {fact: order.placed, all: [{data.total: {gte: 5"


@pytest.mark.parametrize(
    ("body", "status", "error", "says"),
    [
        (b"{nope", 400, "malformed_json", "body is not valid JSON"),
        (b"", 400, "malformed_json", "body is not valid JSON"),
        (b"[]", 400, "invalid_request", "body must be an object with 'fact'"),
        (b'{"profile": {}}', 400, "invalid_request", "body must be an object with 'fact'"),
        (b'{"fact": "order.placed"}', 400, "invalid_request", "body must be an object with 'fact'"),
        (b'{"fact": {"type": "Bad Type"}}', 400, "invalid_fact", "the fact is not valid"),
        (
            b'{"fact": {"type": "order.placed", "profile": {"email": "a@example.com"}},'
            b' "profile": [1]}',
            400,
            "invalid_request",
            "'profile' must be an object",
        ),
        (
            b'{"fact": {"type": "order.placed", "profile": {"email": "a@example.com"}},'
            b' "now": "next tuesday"}',
            400,
            "invalid_request",
            "'now' must be an ISO date/time",
        ),
    ],
)
def test_simulate_refuses_a_bad_request_naming_what_is_wrong(
    client: Any, auth: dict[str, str], body: bytes, status: int, error: str, says: str
) -> None:
    answer = client.post(
        "/api/v1/rules/simulate",
        data=body,
        headers=auth | {"Content-Type": "application/json"},
    )
    assert answer.status_code == status
    assert answer.json["error"] == error and answer.json["message"].startswith(says)


def test_simulate_uses_the_profile_and_time_given(client: Any, auth: dict[str, str]) -> None:
    def fired(**extra: Any) -> tuple[str, list[str]]:
        body = {"fact": ORDER, **extra}
        answer = client.post("/api/v1/rules/simulate", json=body, headers=auth).json
        return answer["now"], [f["rule"] for f in answer["fired"]]

    now, subscribed = fired(now="2024-03-01T09:30:00+00:00")
    assert now.startswith("2024-03-01T09:30:00") and "thank-you-for-your-order" in subscribed
    _, unsubscribed = fired(profile={"email": "ann@example.com", "status": "unsubscribed"})
    assert "thank-you-for-your-order" not in unsubscribed
    assert "tag-every-shopper" in unsubscribed


def test_rules_list_tells_file_line_fact_priority_and_actions(
    client: Any, auth: dict[str, str], rules_dir: Path
) -> None:
    rules = {r["name"]: r for r in client.get("/api/v1/rules", headers=auth).json["rules"]}
    thanks = rules["thank-you-for-your-order"]
    lines = (rules_dir / "orders.yaml").read_text().splitlines()
    assert Path(thanks["file"]).name == "orders.yaml"
    assert "thank-you-for-your-order" in lines[thanks["line"] - 1]
    assert thanks["fact"] == "order.placed"
    assert thanks["actions"] == ["update_profile", "send_mail"]
    assert rules["order-confirmation"]["priority"] == 10
    assert rules["tag-every-shopper"]["fact"] == "order.*"


@pytest.fixture
def never_valid(rules_dir: Path) -> Path:
    """The rule directory is broken before the web process ever loads it."""
    broken = rules_dir / "broken.yaml"
    broken.write_text(BROKEN)
    return broken


def test_with_no_valid_rules_ever_loaded_nothing_is_simulated(
    client: Any, auth: dict[str, str], never_valid: Path
) -> None:
    simulated = client.post("/api/v1/rules/simulate", json={"fact": ORDER}, headers=auth)
    assert simulated.status_code == 409 and simulated.json["error"] == "invalid_rules"
    assert [e["file"] for e in simulated.json["errors"]] == [str(never_valid)]

    reloaded = client.post("/api/v1/rules/reload", headers=auth)
    assert reloaded.status_code == 422 and reloaded.json["running_version"] is None

    listed = client.get("/api/v1/rules", headers=auth).json
    assert (listed["version"], listed["rules"]) == (None, [])
    assert [e["file"] for e in listed["errors"]] == [str(never_valid)]
    assert str(never_valid) in listed["worker_error"]


def test_simulate_needs_a_key(client: Any) -> None:
    assert client.post("/api/v1/rules/simulate", json={"fact": ORDER}).status_code == 401


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


def test_rules_endpoint_lists_the_running_set(client: Any, auth: dict[str, str]) -> None:
    assert client.get("/api/v1/rules").status_code == 401
    body = client.get("/api/v1/rules", headers=auth).json
    names = [r["name"] for r in body["rules"]]
    assert "thank-you-for-your-order" in names and body["errors"] == []
    assert body["version"] == load_rules(ROOT / "rules", ACTIONS).version
