"""Exact Online connector against its stand-in: webhooks, OAuth rotation, rate limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connectors import MemoryStateStore, RemoteRejected
from connectors.builtin.exact import ExactConnector
from hub.integrations.models import ConnectorState
from hub.integrations.pulls import start_run
from hub.runtime import Runtime
from tests.conftest import run_jobs
from tests.stand_ins.exact import ExactStandIn, account, contact, webhook_body
from tests.stand_ins.hub_helpers import (
    add_instance,
    cursor,
    fact_count,
    facts,
    profile_by_external,
    run,
)

ONE_BACKEND = pytest.mark.parametrize("backend", ["embedded"])
SECRET = "exact-webhook-secret"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def exact() -> Iterator[ExactStandIn]:
    with ExactStandIn(page_size=3) as stand_in:
        yield stand_in  # type: ignore[misc]


@pytest.fixture
def rt(hub_runtime: Runtime) -> Runtime:
    hub_runtime.settings = hub_runtime.settings.with_overrides(pull_retry_delays=(0, 0))
    return hub_runtime


def config(exact: ExactStandIn, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": exact.url,
        "division": exact.division,
        "client_id": exact.client_id,
        "client_secret": exact.client_secret,
        "refresh_token": "refresh-0",
        "webhook_secret": SECRET,
        "timeout_seconds": 2,
        "max_inline_wait": 2,
    } | extra


def content(action: str, key: str, topic: str = "Accounts", division: int = 1234) -> dict:
    return {
        "Topic": topic,
        "ClientId": "client-id",
        "Division": division,
        "Action": action,
        "Key": key,
        "ExactOnlineEndpoint": f"https://start.exactonline.nl/api/v1/{division}/crm/{topic}"
        f"(guid'{key}')",
        "EventCreatedOn": "2026-03-01T10:00:00.123",
    }


def test_webhook_update_fetches_the_record(client: Any, rt: Runtime, exact: ExactStandIn) -> None:
    record = account(1, T0, Status="P", IsMailing=False)
    exact.put("crm/Accounts", record)
    add_instance(rt, "erp", "exact", **config(exact))
    body = webhook_body(SECRET, content("Update", record["ID"]))

    resp = client.post("/connectors/erp/webhook", data=body, content_type="application/json")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["facts"][0]["status"] == "accepted"
    fetch = [r for r in exact.requests if r.path.endswith("crm/Accounts")][0]
    assert fetch.arg("$filter") == f"ID eq guid'{record['ID']}'"
    assert "Status" in (fetch.arg("$select") or "")

    replay = client.post("/connectors/erp/webhook", data=body, content_type="application/json")
    assert replay.get_json()["facts"][0]["status"] == "duplicate"
    run_jobs(rt)
    profile = profile_by_external(rt, "exact", record["ID"])
    assert profile is not None and profile["email"] == "info@company1.example"
    assert profile["fields"]["exact_status"] == "prospect"
    assert profile["fields"]["exact_is_mailing"] is False
    assert profile["fields"]["company"] == "Company 1 B.V."


@ONE_BACKEND
def test_webhook_delete_is_a_profile_deleted_fact(
    client: Any, rt: Runtime, exact: ExactStandIn
) -> None:
    add_instance(rt, "erp", "exact", **config(exact))
    key = account(5, T0)["ID"]
    body = webhook_body(SECRET, content("Delete", key))
    resp = client.post("/connectors/erp/webhook", data=body, content_type="application/json")
    assert resp.status_code == 200
    [fact] = facts(rt)
    assert fact.type == "profile.deleted"
    assert fact.profile_ref == {"external_ids": {"exact": key}}
    assert exact.hits("/api/") == 0  # nothing to fetch for a delete


@ONE_BACKEND
def test_hash_is_checked_on_the_content_text_as_sent(
    client: Any, rt: Runtime, exact: ExactStandIn
) -> None:
    add_instance(rt, "erp", "exact", **config(exact))
    key = account(5, T0)["ID"]
    # Exact's own spacing and key order: the hash covers these exact bytes
    text = json.dumps(content("Delete", key), indent=1).encode()
    import hashlib
    import hmac

    digest = hmac.new(SECRET.encode(), text, hashlib.sha256).hexdigest().upper()
    body = b'{ "Content": ' + text + b', "HashCode": "' + digest.encode() + b'" }'
    ok = client.post("/connectors/erp/webhook", data=body, content_type="application/json")
    assert ok.status_code == 200

    # the same content re-serialized (compact) under the old hash must not pass
    compact = json.dumps(content("Delete", key), separators=(",", ":")).encode()
    forged = b'{"Content":' + compact + b',"HashCode":"' + digest.encode() + b'"}'
    bad = client.post("/connectors/erp/webhook", data=forged, content_type="application/json")
    assert bad.status_code == 401


@ONE_BACKEND
@pytest.mark.parametrize("case", ["wrong-secret", "no-hash", "tampered", "lower-case-ok"])
def test_webhook_signature_cases(client: Any, rt: Runtime, exact: ExactStandIn, case: str) -> None:
    add_instance(rt, "erp", "exact", **config(exact))
    key = account(5, T0)["ID"]
    body = webhook_body(
        "other-secret" if case == "wrong-secret" else SECRET, content("Delete", key)
    )
    if case == "no-hash":
        body = json.dumps({"Content": content("Delete", key)}).encode()
    elif case == "tampered":
        body = body.replace(b'"Division":1234', b'"Division":1235')
    elif case == "lower-case-ok":
        head, _, digest = body.rpartition(b'"HashCode":"')
        body = head + b'"HashCode":"' + digest.lower()
    resp = client.post("/connectors/erp/webhook", data=body, content_type="application/json")
    if case == "lower-case-ok":
        assert resp.status_code == 200
        return
    assert resp.status_code == 401
    assert fact_count(rt) == 0


@ONE_BACKEND
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"Action": None}, "Content.Action"),
        ({"Key": None}, "Content.Key"),
        ({"Action": "Merge"}, "Content.Action"),
        ({"Division": 999}, "Content.Division"),
    ],
)
def test_webhook_malformed_content(
    client: Any, rt: Runtime, exact: ExactStandIn, change: dict, field: str
) -> None:
    add_instance(rt, "erp", "exact", **config(exact))
    c = content("Update", account(1, T0)["ID"]) | change
    c = {k: v for k, v in c.items() if v is not None}
    resp = client.post(
        "/connectors/erp/webhook", data=webhook_body(SECRET, c), content_type="application/json"
    )
    assert resp.status_code == 400
    assert resp.get_json()["field"] == field
    assert fact_count(rt) == 0


@ONE_BACKEND
def test_webhook_when_exact_is_down_asks_for_a_retry(
    client: Any, rt: Runtime, exact: ExactStandIn
) -> None:
    from tests.stand_ins.base import Answer

    add_instance(rt, "erp", "exact", **config(exact))
    exact.fail_next("crm/Accounts", Answer(503, b"maintenance", {"Retry-After": "30"}))
    body = webhook_body(SECRET, content("Update", account(1, T0)["ID"]))
    resp = client.post("/connectors/erp/webhook", data=body, content_type="application/json")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "30"
    assert fact_count(rt) == 0


def test_pull_pages_through_next_and_rotates_tokens(rt: Runtime, exact: ExactStandIn) -> None:
    exact.put("crm/Accounts", *(account(i, T0 + timedelta(minutes=i)) for i in range(1, 8)))
    add_instance(rt, "erp", "exact", **config(exact))
    run_id = start_run(rt, "erp", "accounts")
    run_jobs(rt)

    result = run(rt, run_id)
    assert result["status"] == "succeeded", result
    assert result["facts_accepted"] == 7 and result["pages"] == 3  # 3 + 3 + 1 via __next
    assert exact.used_refresh_tokens == ["refresh-0"]
    # the rotated refresh token is stored, sealed: not readable in the table
    with rt.db.session() as s:
        sealed = s.scalar(select(ConnectorState.sealed))
    assert sealed and "refresh-" not in sealed and "access-" not in sealed
    # the cursor never passes the run's start (less the overlap)
    assert cursor(rt, "erp", "accounts") == (T0 + timedelta(minutes=7)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )

    # a second run uses the stored access token; no refresh, and nothing new
    again = start_run(rt, "erp", "accounts")
    run_jobs(rt)
    assert run(rt, again)["facts_accepted"] == 0
    assert exact.used_refresh_tokens == ["refresh-0"]
    last = [r for r in exact.requests if "crm/Accounts" in r.path][-1]
    assert last.arg("$filter") == "Modified ge datetime'2026-03-01T09:07:00'"


def test_expired_access_token_is_refreshed_once(rt: Runtime, exact: ExactStandIn) -> None:
    exact.put("crm/Contacts", contact(1, T0))
    add_instance(rt, "erp", "exact", **config(exact))
    start_run(rt, "erp", "contacts")
    run_jobs(rt)
    exact.expire_access_tokens()  # Exact revoked it early (or the clock drifted)

    exact.put("crm/Contacts", contact(2, T0 + timedelta(minutes=1)))
    run_id = start_run(rt, "erp", "contacts")
    run_jobs(rt)
    assert run(rt, run_id)["status"] == "succeeded"
    assert len(exact.used_refresh_tokens) == 2  # the first, then the rotated one
    profile = profile_by_external(rt, "exact", contact(2, T0)["ID"])
    assert profile["fields"]["first_name"] == "Pat2" and profile["fields"]["exact_is_mailing"]


@ONE_BACKEND
def test_lost_refresh_token_fails_the_run_without_retry(rt: Runtime, exact: ExactStandIn) -> None:
    exact.put("crm/Accounts", account(1, T0))
    add_instance(rt, "erp", "exact", **config(exact, refresh_token="refresh-unknown"))
    run_id = start_run(rt, "erp", "accounts")
    run_jobs(rt)
    result = run(rt, run_id)
    assert result["status"] == "failed" and result["attempts"] == 1
    assert "authorize the connector again" in result["error"]


@ONE_BACKEND
def test_rate_limit_waits_for_the_reset(rt: Runtime) -> None:
    with ExactStandIn(page_size=1, rate_limit=3, rate_window=1.0) as exact:
        exact.put("crm/Accounts", *(account(i, T0) for i in range(1, 6)))
        add_instance(rt, "erp", "exact", **config(exact))  # type: ignore[arg-type]
        run_id = start_run(rt, "erp", "accounts")
        run_jobs(rt)
        result = run(rt, run_id)
        assert result["status"] == "succeeded" and result["facts_accepted"] == 5
        assert exact.hits("crm/Accounts") == 5  # waited for the reset instead of hitting 429


@ONE_BACKEND
def test_long_rate_limit_ends_the_attempt_and_retries_after_the_reset(rt: Runtime) -> None:
    with ExactStandIn(page_size=1, rate_limit=2, rate_window=60.0) as exact:
        exact.put("crm/Accounts", *(account(i, T0) for i in range(1, 6)))
        add_instance(rt, "erp", "exact", **config(exact))  # type: ignore[arg-type]
        run_id = start_run(rt, "erp", "accounts")
        run_jobs(rt)
        result = run(rt, run_id)
        assert result["status"] == "retrying" and "rate limit" in result["error"]
        wait = datetime.fromisoformat(result["next_attempt_at"]) - datetime.now(UTC)
        assert 30 < wait.total_seconds() <= 61  # until the minute's reset, not our 0 s
        assert cursor(rt, "erp", "accounts") is None  # nothing advanced mid-run
        assert exact.hits("crm/Accounts") == 2  # and no request was wasted on a 429


def test_concurrent_refresh_uses_the_winners_token() -> None:
    """Two connectors of one instance share state: the second reuses the first's refresh."""
    with ExactStandIn() as exact:
        state = MemoryStateStore()
        one = ExactConnector("erp", config(exact), state=state)  # type: ignore[arg-type]
        two = ExactConnector("erp", config(exact), state=state)  # type: ignore[arg-type]
        assert one.access_token() == two.access_token()
        assert exact.used_refresh_tokens == ["refresh-0"]
        exact.refresh_tokens.clear()  # every refresh token now refused
        with pytest.raises(RemoteRejected):
            two.access_token(stale=two.access_token())


@ONE_BACKEND
def test_next_link_to_another_host_is_not_followed(rt: Runtime, exact: ExactStandIn) -> None:
    from tests.stand_ins.base import Answer

    add_instance(rt, "erp", "exact", **config(exact))
    page = {"d": {"results": [], "__next": "http://attacker.example/api/v1/1234/crm/Accounts"}}
    exact.fail_next("crm/Accounts", Answer(200, page))
    run_id = start_run(rt, "erp", "accounts")
    run_jobs(rt)
    result = run(rt, run_id)
    assert result["status"] == "failed" and "__next points away" in result["error"]


def test_test_connection_reports_the_user(exact: ExactStandIn) -> None:
    connector = ExactConnector("erp", config(exact))
    assert connector.test_connection() == "connected to Exact Online as Stand-in User"
