"""A profile's timeline: facts, firings, actions and mails in order, the answer to "why"."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.models import Profile
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from tests.analysis.test_simulate import ORDER
from tests.conftest import run_jobs
from tests.rules.test_language import post


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
