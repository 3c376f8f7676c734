"""``DELETE /api/v1/followups/<job_id>``: cancel a follow-up whose id is on the timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from tests.conftest import run_jobs

RULES = """\
rules:
  - name: welcome
    when: {fact: profile.signed_up}
    then:
      - update_profile: {add_tags: [welcomed]}
      - update_profile: {add_tags: [nudged]}
        after: 1h
"""


def timeline_jobs(client: Any, auth: dict[str, str]) -> dict[str, str]:
    """The job ids on Ann's timeline, each with the kind of event it is."""
    pid = client.get("/api/v1/profiles?email=ann@example.com", headers=auth).json["id"]
    events = client.get(f"/api/v1/profiles/{pid}/timeline", headers=auth).json["events"]
    return {e["job_id"]: e["kind"] for e in events if e.get("job_id")}


@pytest.fixture
def jobs(client: Any, auth: dict[str, str], hub_runtime: Runtime, rules_dir: Path) -> Any:
    for old in rules_dir.glob("*.yaml"):
        old.unlink()
    (rules_dir / "welcome.yaml").write_text(RULES)
    hub_runtime.set_engine(None)
    fact = {"type": "profile.signed_up", "profile": {"email": "ann@example.com"}}
    assert client.post("/api/v1/facts", json=fact, headers=auth).status_code == 202
    drain_pending()
    run_jobs(hub_runtime)  # the immediate action runs; the follow-up waits an hour
    return timeline_jobs(client, auth)


def test_a_scheduled_follow_up_is_cancelled_once(
    client: Any, auth: dict[str, str], jobs: dict[str, str]
) -> None:
    [job_id] = [j for j, kind in jobs.items() if kind == "scheduled"]
    first = client.delete(f"/api/v1/followups/{job_id}", headers=auth)
    assert first.status_code == 200 and first.json == {"job_id": job_id, "cancelled": True}
    again = client.delete(f"/api/v1/followups/{job_id}", headers=auth)
    assert again.status_code == 409 and again.json["error"] == "not_cancellable"


def test_an_action_that_already_ran_is_not_cancellable(
    client: Any, auth: dict[str, str], jobs: dict[str, str]
) -> None:
    [job_id] = [j for j, kind in jobs.items() if kind != "scheduled"]
    answer = client.delete(f"/api/v1/followups/{job_id}", headers=auth)
    assert answer.status_code == 409
    assert answer.json["message"].startswith(f"{job_id} already ran")


@pytest.mark.parametrize("job_id", ["nope", "sweep-1", "act-999999-0123456789ab-0"])
def test_an_unknown_id_is_404(client: Any, auth: dict[str, str], job_id: str) -> None:
    answer = client.delete(f"/api/v1/followups/{job_id}", headers=auth)
    assert answer.status_code == 404 and answer.json["error"] == "not_found"


def test_an_id_no_rule_ever_scheduled_is_404(
    client: Any, auth: dict[str, str], jobs: dict[str, str]
) -> None:
    fact_id = next(iter(jobs)).split("-")[1]  # a fact that exists, a job that never did
    answer = client.delete(f"/api/v1/followups/act-{fact_id}-ffffffffffff-0", headers=auth)
    assert answer.status_code == 404 and answer.json["error"] == "not_found"
