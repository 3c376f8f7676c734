"""Exact Online connector against its stand-in, which answers with Exact's own bytes.

Notifications are posted by the stand-in to the hub's webhook endpoint over real HTTP; pulls
are real RQ jobs against the stand-in's REST API. Covered: every notification variant (the
vendor samples verbatim), consent read the right way round (``IsMailing`` is an exclusion),
the subscription's validation POST, deletes, daily and minutely rate limits, token refresh
only once expired (Exact refuses early ones), rotation races, and forged deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from connectors import MemoryStateStore, RemoteRejected, RemoteUnavailable
from connectors.base import WebhookRequest
from connectors.builtin.exact import ExactConnector
from hub.integrations.models import ConnectorState, RefusedDelivery
from hub.integrations.pulls import start_run
from hub.models import ConsentEvent, Profile
from hub.runtime import Runtime
from tests.conftest import run_jobs
from tests.stand_ins.base import Answer
from tests.stand_ins.exact import (
    TOO_EARLY,
    VENDOR_SECRET,
    ExactStandIn,
    account,
    contact,
    deliver,
    notification,
    validate_subscription,
    vendor,
    vendor_records,
    webhook_body,
)
from tests.stand_ins.hub_helpers import (
    add_instance,
    cursor,
    fact_count,
    facts,
    profile_by_email,
    profile_by_external,
    run,
)

ONE_BACKEND = pytest.mark.parametrize("backend", ["embedded"])
SECRET = "exact-webhook-secret"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
VENDOR_DIVISION = 123456  # the division of the vendor samples
VENDOR_KEY = "6d0e5f7a-1b2c-4d3e-8f90-a1b2c3d4e5f6"  # account 1 of the vendor samples


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


def hook(hub_url: str, instance: str = "erp") -> str:
    return f"{hub_url}/connectors/{instance}/webhook"


def count(rt: Runtime, model: Any) -> int:
    with rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def ledger(rt: Runtime, profile_id: int) -> list[dict[str, Any]]:
    with rt.db.session() as s:
        rows = s.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.profile_id == profile_id)
            .order_by(ConsentEvent.id)
        )
        return [r.as_dict() for r in rows]


def token_requests(exact: ExactStandIn) -> int:
    return exact.hits("/api/oauth2/token")


# -- webhooks: the vendor's notifications as sent ------------------------------------------


@pytest.fixture
def vendor_exact() -> Iterator[ExactStandIn]:
    """A stand-in holding the vendor sample records, in the samples' division."""
    with ExactStandIn(division=VENDOR_DIVISION) as stand_in:
        stand_in.put("crm/Accounts", *vendor_records("rest-crm-accounts-page.json"))
        stand_in.put("crm/Contacts", *vendor_records("rest-crm-contacts-page.json"))
        yield stand_in  # type: ignore[misc]


@pytest.mark.parametrize("action", ["create", "update"])
def test_vendor_create_and_update_fetch_the_record(
    hub_url: str, rt: Runtime, vendor_exact: ExactStandIn, action: str
) -> None:
    add_instance(rt, "erp", "exact", **config(vendor_exact, webhook_secret=VENDOR_SECRET))
    body = vendor(f"webhook-accounts-{action}.json")  # byte for byte as recorded

    resp = deliver(hook(hub_url), body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["facts"][0]["status"] == "accepted"
    fetch = [r for r in vendor_exact.requests if r.path.endswith("crm/Accounts")][0]
    assert fetch.arg("$filter") == f"ID eq guid'{VENDOR_KEY}'"
    assert "IsMailing" in (fetch.arg("$select") or "")
    assert deliver(hook(hub_url), body).json()["facts"][0]["status"] == "duplicate"

    run_jobs(rt)
    profile = profile_by_external(rt, "exact", VENDOR_KEY)
    assert profile is not None and profile["email"] == "info@bakkerijdevries.example"
    assert profile["fields"]["exact_status"] == "customer"
    assert profile["fields"]["exact_mailing_excluded"] is False
    assert profile["fields"]["company"] == "Bakkerij De Vries B.V."
    # IsMailing 0 is "not excluded", not an opt-in: no consent is invented
    assert profile["status"] == "unconfirmed"
    assert ledger(rt, profile["id"]) == []


def test_vendor_delete_is_a_record_deleted_fact(
    hub_url: str, rt: Runtime, vendor_exact: ExactStandIn
) -> None:
    add_instance(rt, "erp", "exact", **config(vendor_exact, webhook_secret=VENDOR_SECRET))
    resp = deliver(hook(hub_url), vendor("webhook-accounts-delete.json"))
    assert resp.status_code == 200, resp.text
    [fact] = facts(rt)
    assert fact.type == "record.deleted"
    assert fact.source == "exact"
    assert fact.profile_ref == {"external_ids": {"exact": VENDOR_KEY}, "create": False}
    assert fact.data == {
        "source": "exact",
        "external_id": VENDOR_KEY,
        "record": "Accounts",
        "action": "unlink",
        "instance": "erp",
        "division": VENDOR_DIVISION,
    }
    assert fact.occurred_at == datetime(2026, 1, 5, 10, 1, 17, 123000, tzinfo=UTC)
    assert vendor_exact.hits("/api/") == 0  # nothing to fetch for a delete


@ONE_BACKEND
@pytest.mark.parametrize(
    ("on_delete", "fact_type", "action"),
    [
        ("unlink", "record.deleted", "unlink"),
        ("delete", "record.deleted", "delete"),
        ("keep", "exact.record.deleted", "keep"),
    ],
)
def test_on_delete_setting_shapes_the_fact(
    hub_url: str, rt: Runtime, exact: ExactStandIn, on_delete: str, fact_type: str, action: str
) -> None:
    add_instance(rt, "erp", "exact", **config(exact, on_delete=on_delete))
    key = contact(3, T0)["ID"].upper()  # Exact's keys in any case: the link is lower-case
    body = webhook_body(SECRET, notification("Delete", key, topic="Contacts"))
    assert deliver(hook(hub_url), body).status_code == 200
    [fact] = facts(rt)
    assert fact.type == fact_type
    assert fact.profile_ref == {"external_ids": {"exact": key.lower()}, "create": False}
    assert fact.data["action"] == action and fact.data["record"] == "Contacts"


def test_delete_unlinks_a_known_record_and_creates_nobody_for_an_unknown_one(
    hub_url: str, rt: Runtime, exact: ExactStandIn
) -> None:
    """The hub side (hub.profiles.records) acting on the emitted fact, end to end."""
    known = account(1, T0)
    exact.put("crm/Accounts", known)
    add_instance(rt, "erp", "exact", **config(exact))
    assert deliver(hook(hub_url), webhook_body(SECRET, notification("Update", known["ID"])))
    run_jobs(rt)
    assert profile_by_external(rt, "exact", known["ID"]) is not None

    unknown = account(99, T0)["ID"]
    for key in (known["ID"], unknown):
        resp = deliver(hook(hub_url), webhook_body(SECRET, notification("Delete", key)))
        assert resp.status_code == 200
    run_jobs(rt)
    assert profile_by_external(rt, "exact", known["ID"]) is None  # the link is gone
    kept = profile_by_email(rt, "info@company1.example")
    assert kept is not None  # unlink keeps the profile and its history
    assert profile_by_external(rt, "exact", unknown) is None
    assert count(rt, Profile) == 1  # the unknown id created nobody


@ONE_BACKEND
def test_contact_update_and_an_unmapped_topic(
    hub_url: str, rt: Runtime, exact: ExactStandIn
) -> None:
    person = contact(1, T0, IsMailingExcluded=True)
    exact.put("crm/Contacts", person)
    add_instance(rt, "erp", "exact", **config(exact))
    resp = deliver(
        hook(hub_url), webhook_body(SECRET, notification("Update", person["ID"], topic="Contacts"))
    )
    assert resp.status_code == 200 and len(resp.json()["facts"]) == 1
    items = deliver(
        hook(hub_url), webhook_body(SECRET, notification("Update", person["ID"], topic="Items"))
    )
    assert items.status_code == 200 and items.json() == {"facts": []}
    run_jobs(rt)
    profile = profile_by_external(rt, "exact", person["ID"])
    assert profile is not None and profile["status"] == "unsubscribed"
    assert profile["fields"]["exact_mailing_excluded"] is True
    [entry] = ledger(rt, profile["id"])
    assert entry["proof"] == "exact Contacts.IsMailingExcluded=true (excluded from mailing)"


@ONE_BACKEND
def test_update_for_a_record_gone_meanwhile_gives_no_fact(
    hub_url: str, rt: Runtime, exact: ExactStandIn
) -> None:
    add_instance(rt, "erp", "exact", **config(exact))
    body = webhook_body(SECRET, notification("Update", account(7, T0)["ID"]))
    resp = deliver(hook(hub_url), body)
    assert resp.status_code == 200 and resp.json() == {"facts": []}
    assert fact_count(rt) == 0


# -- the subscription's validation ---------------------------------------------------------


@pytest.mark.parametrize("secret", [SECRET, None])
def test_validation_post_is_answered_and_stores_nothing(
    hub_url: str, rt: Runtime, exact: ExactStandIn, secret: str | None
) -> None:
    add_instance(rt, "erp", "exact", **config(exact, webhook_secret=secret))
    resp = validate_subscription(hook(hub_url))
    assert resp.status_code == 200
    assert resp.content == b""
    assert fact_count(rt) == 0 and count(rt, RefusedDelivery) == 0
    assert exact.requests == []  # nothing fetched, no token spent


def test_handshake_is_recognised_narrowly() -> None:
    connector = ExactConnector(
        "erp", {"division": 1, "client_id": "c", "client_secret": "s", "refresh_token": "r"}
    )
    assert connector.handshake(WebhookRequest(b"", {"Content-Length": "0"})).status == 200  # type: ignore[union-attr]
    assert connector.handshake(WebhookRequest(b"")) is not None
    for body in (b" ", b"{}", b'{"Content":{}}'):
        assert connector.handshake(WebhookRequest(body, {"Content-Length": str(len(body))})) is None


# -- signatures --------------------------------------------------------------------------


@ONE_BACKEND
def test_hash_is_checked_on_the_content_text_as_sent(
    hub_url: str, rt: Runtime, exact: ExactStandIn
) -> None:
    add_instance(rt, "erp", "exact", **config(exact))
    key = account(5, T0)["ID"]
    # Exact's own spacing and key order: the hash covers these exact bytes
    text = json.dumps(notification("Delete", key), indent=1).encode()
    digest = hmac.new(SECRET.encode(), text, hashlib.sha256).hexdigest().upper()
    body = b'{ "Content": ' + text + b', "HashCode": "' + digest.encode() + b'" }'
    assert deliver(hook(hub_url), body).status_code == 200

    # the same content re-serialized (compact) under the old hash must not pass
    compact = json.dumps(notification("Delete", key), separators=(",", ":")).encode()
    forged = b'{"Content":' + compact + b',"HashCode":"' + digest.encode() + b'"}'
    assert deliver(hook(hub_url), forged).status_code == 401


@pytest.mark.parametrize(
    "case", ["wrong-secret", "unsigned", "empty-hash", "tampered", "vendor-other-secret"]
)
def test_forged_and_unsigned_deliveries_are_refused_with_nothing_stored(
    hub_url: str, rt: Runtime, exact: ExactStandIn, case: str
) -> None:
    add_instance(rt, "erp", "exact", **config(exact))
    key = account(5, T0)["ID"]
    exact.put("crm/Accounts", account(5, T0))
    c = notification("Update", key)
    body = webhook_body("other-secret" if case == "wrong-secret" else SECRET, c)
    if case == "unsigned":
        body = json.dumps({"Content": c}).encode()
    elif case == "empty-hash":
        body = body.rpartition(b',"HashCode"')[0] + b',"HashCode":""}'
    elif case == "tampered":
        body = body.replace(b'"Action":"Update"', b'"Action":"Delete"')
    elif case == "vendor-other-secret":
        body = vendor("webhook-accounts-delete.json")  # signed with the vendor's test secret
    resp = deliver(hook(hub_url), body)
    assert resp.status_code == 401, resp.text
    assert fact_count(rt) == 0 and count(rt, RefusedDelivery) == 0
    assert exact.requests == []  # no record fetched for an unverified delivery


@ONE_BACKEND
def test_lower_case_hash_is_accepted(hub_url: str, rt: Runtime, exact: ExactStandIn) -> None:
    add_instance(rt, "erp", "exact", **config(exact))
    body = webhook_body(SECRET, notification("Delete", account(5, T0)["ID"]))
    head, _, digest = body.rpartition(b'"HashCode":"')
    assert deliver(hook(hub_url), head + b'"HashCode":"' + digest.lower()).status_code == 200


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
    hub_url: str, rt: Runtime, exact: ExactStandIn, change: dict, field: str
) -> None:
    add_instance(rt, "erp", "exact", **config(exact))
    c = notification("Update", account(1, T0)["ID"]) | change
    c = {k: v for k, v in c.items() if v is not None}
    resp = deliver(hook(hub_url), webhook_body(SECRET, c))
    assert resp.status_code == 400
    assert resp.json()["field"] == field
    assert fact_count(rt) == 0


@ONE_BACKEND
def test_webhook_when_exact_is_down_asks_for_a_retry(
    hub_url: str, rt: Runtime, exact: ExactStandIn
) -> None:
    add_instance(rt, "erp", "exact", **config(exact))
    exact.fail_next("crm/Accounts", Answer(503, b"maintenance", {"Retry-After": "30"}))
    body = webhook_body(SECRET, notification("Update", account(1, T0)["ID"]))
    resp = deliver(hook(hub_url), body)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "30"
    assert fact_count(rt) == 0


# -- consent, pulled -----------------------------------------------------------------------


def test_pulled_consent_reads_is_mailing_as_an_exclusion(
    rt: Runtime, vendor_exact: ExactStandIn
) -> None:
    add_instance(rt, "erp", "exact", **config(vendor_exact))
    for stream in ("accounts", "contacts"):
        run_id = start_run(rt, "erp", stream)
        run_jobs(rt)
        assert run(rt, run_id)["status"] == "succeeded", run(rt, run_id)

    customer = profile_by_email(rt, "info@bakkerijdevries.example")  # IsMailing 0, Status C
    assert customer is not None and customer["status"] == "unconfirmed"
    assert customer["fields"]["exact_status"] == "customer"
    assert customer["fields"]["exact_mailing_excluded"] is False
    assert ledger(rt, customer["id"]) == []

    prospect = profile_by_email(rt, "verkoop@fietsenjansen.example")  # IsMailing 1, Status P
    assert prospect is not None and prospect["status"] == "unsubscribed"
    assert prospect["fields"]["exact_status"] == "prospect"
    assert prospect["fields"]["exact_mailing_excluded"] is True
    [entry] = ledger(rt, prospect["id"])
    assert entry["stated"] == "unsubscribed" and entry["source"] == "exact"
    assert entry["proof"] == "exact Accounts.IsMailing=1 (excluded from mailing)"
    assert entry["evidence"] == {
        "record": "Accounts",
        "id": "7e1f6a8b-2c3d-4e4f-9a01-b2c3d4e5f6a7",
        "field": "IsMailing",
        "value": 1,
    }

    person = profile_by_email(rt, "p.devries@bakkerijdevries.example")  # IsMailingExcluded
    assert person is not None and person["status"] == "unsubscribed"
    assert person["fields"]["exact_account"] == VENDOR_KEY


@pytest.mark.parametrize(
    ("status", "field"), [("A", "none"), ("S", "suspect"), ("P", "prospect"), ("C", "customer")]
)
def test_status_codes(status: str, field: str) -> None:
    connector = ExactConnector(
        "erp", {"division": 1, "client_id": "c", "client_secret": "s", "refresh_token": "r"}
    )
    fact = connector.record_fact("Accounts", account(1, T0, Status=status), "d.results.0")
    assert fact.profile.fields["exact_status"] == field


@pytest.mark.parametrize(
    ("topic", "record", "stated"),
    [
        ("Accounts", account(1, T0, IsMailing=1), "unsubscribed"),
        ("Accounts", account(1, T0, IsMailing=0), None),
        ("Accounts", account(1, T0, IsMailing=None), None),
        ("Contacts", contact(1, T0, IsMailingExcluded=True), "unsubscribed"),
        ("Contacts", contact(1, T0, IsMailingExcluded=False), None),
    ],
)
def test_consent_is_stated_only_for_an_exclusion(
    topic: str, record: dict[str, Any], stated: str | None
) -> None:
    connector = ExactConnector(
        "erp", {"division": 1, "client_id": "c", "client_secret": "s", "refresh_token": "r"}
    )
    fact = connector.record_fact(topic, record, "d.results.0")
    consent = fact.profile.consent
    assert (consent.status if consent else None) == stated
    assert fact.profile.status is None  # never a plain status, never "subscribed"
    if consent:
        assert not consent.explicit and consent.at == T0


def test_a_bad_mailing_flag_names_the_field() -> None:
    from connectors import PayloadInvalid

    connector = ExactConnector(
        "erp", {"division": 1, "client_id": "c", "client_secret": "s", "refresh_token": "r"}
    )
    with pytest.raises(PayloadInvalid) as caught:
        connector.record_fact("Accounts", account(1, T0, IsMailing="maybe"), "d.results.0")
    assert caught.value.field == "d.results.0.IsMailing"


@ONE_BACKEND
def test_not_excluded_never_resubscribes_nor_subscribes(
    hub_url: str, rt: Runtime, exact: ExactStandIn
) -> None:
    """An account that was excluded and is no longer stays unsubscribed: 0 is no opt-in."""
    record = account(1, T0, IsMailing=1)
    exact.put("crm/Accounts", record)
    add_instance(rt, "erp", "exact", **config(exact))
    deliver(hook(hub_url), webhook_body(SECRET, notification("Update", record["ID"])))
    run_jobs(rt)
    exact.put("crm/Accounts", account(1, T0 + timedelta(minutes=1), IsMailing=0))
    later = notification("Update", record["ID"], created="2026-03-01T10:01:00.000")
    assert deliver(hook(hub_url), webhook_body(SECRET, later)).status_code == 200
    run_jobs(rt)
    profile = profile_by_external(rt, "exact", record["ID"])
    assert profile is not None and profile["status"] == "unsubscribed"
    assert profile["fields"]["exact_mailing_excluded"] is False
    assert [e["stated"] for e in ledger(rt, profile["id"])] == ["unsubscribed"]


# -- pulls, tokens -------------------------------------------------------------------------


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


@ONE_BACKEND
def test_a_401_on_a_valid_token_is_reported_not_refreshed(rt: Runtime, exact: ExactStandIn) -> None:
    exact.put("crm/Contacts", contact(1, T0))
    add_instance(rt, "erp", "exact", **config(exact))
    start_run(rt, "erp", "contacts")
    run_jobs(rt)
    assert token_requests(exact) == 1
    exact.revoke_access_tokens()  # Exact refuses the token although it has not expired

    run_id = start_run(rt, "erp", "contacts")
    run_jobs(rt)
    result = run(rt, run_id)
    assert result["status"] == "failed" and result["attempts"] == 1
    assert "HTTP 401" in result["error"] and "although it is valid until" in result["error"]
    assert token_requests(exact) == 1  # no early refresh: that would be refused (too early)
    assert exact.refused_refreshes == []


def test_a_token_is_refreshed_once_it_is_about_to_expire() -> None:
    """Lifetime 22 s: usable for 2 s (our margin is 20 s), then refreshed; Exact accepts it."""
    with ExactStandIn(token_lifetime=22) as exact:
        exact.put("crm/Contacts", contact(1, T0))
        connector = ExactConnector("erp", config(exact))  # type: ignore[arg-type]
        first = connector.access_token()
        assert connector.access_token() == first  # still valid: no refresh
        time.sleep(2.2)
        pages = list(connector.pull("contacts", None))
        assert len(pages[0].facts) == 1
        assert token_requests(exact) == 2 and exact.refused_refreshes == []
        assert len(exact.used_refresh_tokens) == 2
        assert connector.access_token() != first


def test_an_early_refresh_refused_by_exact_is_retried_later_not_fatal() -> None:
    """Our clock says expired, Exact's says valid: the refresh token is kept, retried later."""
    with ExactStandIn() as exact:
        state = MemoryStateStore()
        connector = ExactConnector("erp", config(exact), state=state)  # type: ignore[arg-type]
        connector.access_token()
        kept = state.load()["refresh_token"]
        state.update(lambda s: {**s, "expires_at": time.time() - 1})  # our clock runs ahead

        with pytest.raises(RemoteUnavailable) as caught:
            connector.access_token()
        assert "too early" in str(caught.value)
        assert caught.value.retry_after == 60  # Exact takes a refresh in the last 30 s
        assert exact.refused_refreshes == [json.loads(TOO_EARLY)["error_description"]]
        assert state.load()["refresh_token"] == kept and kept in exact.refresh_tokens


@ONE_BACKEND
def test_a_pull_whose_refresh_is_refused_as_too_early_retries(
    rt: Runtime, exact: ExactStandIn
) -> None:
    from hub.integrations.secrets import SecretBox
    from hub.integrations.store import DbStateStore, load_connector

    exact.put("crm/Accounts", account(1, T0))
    add_instance(rt, "erp", "exact", **config(exact))
    start_run(rt, "erp", "accounts")
    run_jobs(rt)
    _, instance_id = load_connector(rt.db, SecretBox(rt.settings.secret_key), "erp")
    store = DbStateStore(rt.db, SecretBox(rt.settings.secret_key), instance_id)
    store.update(lambda s: {**s, "expires_at": time.time() - 1})

    run_id = start_run(rt, "erp", "accounts")
    run_jobs(rt)
    result = run(rt, run_id)
    assert result["status"] == "retrying", result
    wait = datetime.fromisoformat(result["next_attempt_at"]) - datetime.now(UTC)
    assert 50 < wait.total_seconds() <= 61  # a minute on, not at once and not failed
    assert len(exact.refresh_tokens) == 1 and store.load()["refresh_token"] in exact.refresh_tokens


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
def test_expired_refresh_token_tells_the_operator_to_authorize_again(
    rt: Runtime, exact: ExactStandIn
) -> None:
    exact.put("crm/Accounts", account(1, T0))
    exact.expire_refresh_tokens()
    add_instance(rt, "erp", "exact", **config(exact))
    run_id = start_run(rt, "erp", "accounts")
    run_jobs(rt)
    result = run(rt, run_id)
    assert result["status"] == "failed" and result["attempts"] == 1
    assert "The refresh token expired at 10/11/2022" in result["error"]
    assert "authorize the connector again" in result["error"]


def test_concurrent_refresh_uses_the_winners_token() -> None:
    """Two connectors of one instance share state: the second reuses the first's refresh."""
    with ExactStandIn() as exact:
        state = MemoryStateStore()
        one = ExactConnector("erp", config(exact), state=state)  # type: ignore[arg-type]
        two = ExactConnector("erp", config(exact), state=state)  # type: ignore[arg-type]
        assert one.access_token() == two.access_token()
        assert exact.used_refresh_tokens == ["refresh-0"]
        # the token expired: one refreshes, two (waiting for the lock) takes its result
        state.update(lambda s: {**s, "expires_at": time.time() - 1})
        stale = state.load()["access_token"]
        exact.expire_access_tokens()  # by Exact's clock too
        fresh = one.access_token(stale=stale)
        assert two.access_token(stale=stale) == fresh
        assert len(exact.used_refresh_tokens) == 2 and exact.refused_refreshes == []


class LaggingStore(MemoryStateStore):
    """A copy of the state that does not share the other copy's lock (a second hub, say).

    ``update`` applies the change to the state as this copy last loaded it, so a refresh can
    spend a refresh token the other copy already rotated.
    """

    def __init__(self, shared: MemoryStateStore) -> None:
        super().__init__()
        self.shared = shared
        self.snapshot: dict[str, Any] | None = None

    def load(self) -> dict[str, Any]:
        return dict(self.snapshot) if self.snapshot is not None else self.shared.load()

    def update(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        if self.snapshot is not None:
            stale, self.snapshot = self.snapshot, None
            result = change(stale)
        else:
            result = change(self.shared.load())
        return self.shared.update(lambda _: result)


def test_old_refresh_token_used_reloads_and_takes_the_newer_token() -> None:
    with ExactStandIn() as exact:
        shared = MemoryStateStore()
        winner = ExactConnector("erp", config(exact), state=shared)  # type: ignore[arg-type]
        lagging = LaggingStore(shared)
        loser = ExactConnector("erp", config(exact), state=lagging)  # type: ignore[arg-type]
        lagging.snapshot = {}  # it read the state before the winner saved anything
        token = winner.access_token()
        assert loser.access_token() == token  # "Old refresh token used.", then the newer one
        assert exact.refused_refreshes == ["Old refresh token used."]
        assert exact.used_refresh_tokens == ["refresh-0"]


def test_old_refresh_token_used_without_a_newer_one_is_reported() -> None:
    with ExactStandIn() as exact:
        ExactConnector("erp", config(exact)).access_token()  # another copy spent refresh-0
        alone = ExactConnector("erp", config(exact))  # type: ignore[arg-type]
        with pytest.raises(RemoteRejected) as caught:
            alone.access_token()
        message = str(caught.value)
        assert "Old refresh token used." in message and "authorize the connector again" in message


# -- rate limits ---------------------------------------------------------------------------


@ONE_BACKEND
def test_minutely_limit_waits_for_the_reset(rt: Runtime) -> None:
    with ExactStandIn(page_size=1, rate_limit=3, rate_window=1.0) as exact:
        exact.put("crm/Accounts", *(account(i, T0) for i in range(1, 6)))
        add_instance(rt, "erp", "exact", **config(exact))  # type: ignore[arg-type]
        run_id = start_run(rt, "erp", "accounts")
        run_jobs(rt)
        result = run(rt, run_id)
        assert result["status"] == "succeeded" and result["facts_accepted"] == 5
        assert exact.hits("crm/Accounts") == 5  # waited for the reset instead of hitting 429


@ONE_BACKEND
def test_long_minutely_limit_ends_the_attempt_and_retries_after_the_reset(rt: Runtime) -> None:
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


@ONE_BACKEND
def test_a_minutely_429_is_waited_out_in_place(rt: Runtime) -> None:
    """Exact's own 429 (minutely headers only), reset one second away: slept through."""
    with ExactStandIn(page_size=10) as exact:
        exact.put("crm/Accounts", account(1, T0))
        reset = str(int((time.time() + 1) * 1000))
        exact.fail_next(
            "crm/Accounts",
            Answer(
                429,
                b"",
                {
                    "X-RateLimit-Minutely-Limit": "60",
                    "X-RateLimit-Minutely-Remaining": "0",
                    "X-RateLimit-Minutely-Reset": reset,
                },
            ),
        )
        add_instance(rt, "erp", "exact", **config(exact))  # type: ignore[arg-type]
        run_id = start_run(rt, "erp", "accounts")
        run_jobs(rt)
        assert run(rt, run_id)["status"] == "succeeded"
        assert exact.hits("crm/Accounts") == 2


@ONE_BACKEND
def test_daily_limit_429_waits_until_the_daily_reset(rt: Runtime, hub_url: str) -> None:
    reset = time.time() + 5 * 3600
    with ExactStandIn(page_size=1, daily_limit=2, daily_reset=reset) as exact:
        exact.put("crm/Accounts", *(account(i, T0) for i in range(1, 6)))
        add_instance(rt, "erp", "exact", **config(exact))  # type: ignore[arg-type]
        exact.daily_count = 1  # one call left today
        run_id = start_run(rt, "erp", "accounts")
        run_jobs(rt)
        result = run(rt, run_id)
        assert result["status"] == "retrying" and "daily rate limit" in result["error"], result
        wait = datetime.fromisoformat(result["next_attempt_at"]) - datetime.now(UTC)
        assert abs(wait.total_seconds() - 5 * 3600) < 60  # the reset, not 30/120/600 s
        hits = exact.hits("crm/Accounts")
        assert hits == 1  # the day's last call; the 429 was not even needed

        # other processes of the instance know it too: a notification asks Exact for nothing
        body = webhook_body(SECRET, notification("Update", account(1, T0)["ID"]))
        resp = deliver(hook(hub_url), body)
        assert resp.status_code == 503
        assert abs(int(resp.headers["Retry-After"]) - 5 * 3600) < 60
        assert exact.hits("crm/Accounts") == hits


@ONE_BACKEND
def test_daily_429_without_minutely_headers_waits_until_its_reset(rt: Runtime) -> None:
    """Exact's daily 429 as issue 12 gives it: X-RateLimit-* only, reset in epoch ms."""
    with ExactStandIn(page_size=1) as exact:
        exact.put("crm/Accounts", account(1, T0))
        reset = time.time() + 3 * 3600
        exact.fail_next(
            "crm/Accounts",
            Answer(
                429,
                {
                    "error": {
                        "code": "",
                        "message": {"lang": "", "value": "API rate limit exceeded."},
                    }
                },
                {
                    "X-RateLimit-Limit": "5000",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(reset * 1000)),
                },
            ),
        )
        add_instance(rt, "erp", "exact", **config(exact))  # type: ignore[arg-type]
        run_id = start_run(rt, "erp", "accounts")
        run_jobs(rt)
        result = run(rt, run_id)
        assert result["status"] == "retrying" and "daily rate limit" in result["error"], result
        wait = datetime.fromisoformat(result["next_attempt_at"]) - datetime.now(UTC)
        assert abs(wait.total_seconds() - 3 * 3600) < 60
        assert exact.hits("crm/Accounts") == 1  # not retried in place


def test_daily_limit_from_the_stand_in_as_a_429() -> None:
    """The stand-in's own daily 429 (the limit spent by another app): RemoteUnavailable."""
    reset = time.time() + 7200
    with ExactStandIn(daily_limit=1, daily_reset=reset) as exact:
        exact.put("crm/Accounts", account(1, T0))
        connector = ExactConnector("erp", config(exact))  # type: ignore[arg-type]
        connector.access_token()
        exact.daily_count = 1
        with pytest.raises(RemoteUnavailable) as caught:
            list(connector.pull("accounts", None))
        assert caught.value.retry_after is not None
        assert abs(caught.value.retry_after - 7200) < 60
        answer = [r for r in exact.requests if "crm/Accounts" in r.path]
        assert len(answer) == 1


# -- the rest ------------------------------------------------------------------------------


@ONE_BACKEND
def test_next_link_to_another_host_is_not_followed(rt: Runtime, exact: ExactStandIn) -> None:
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


def test_contract_example_has_a_handshake_and_an_empty_delivery() -> None:
    example = ExactConnector.contract_example()
    connector = ExactConnector("erp", example.config)
    for request in example.handshakes:
        answer = connector.handshake(request)
        assert answer is not None and answer.status == 200 and answer.body is None
    for request in example.empty:
        assert connector.handshake(request) is None
        connector.verify(request)
        assert connector.parse(request) == []


def test_real_http_sanity(hub_url: str) -> None:
    """The endpoint is the hub's: an unknown instance is a 404 over HTTP, not a stand-in's."""
    assert requests.post(hook(hub_url, "nobody"), data=b"{}", timeout=5).status_code == 404
