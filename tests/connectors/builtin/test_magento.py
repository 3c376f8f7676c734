"""Magento 2 connector against the Magento stand-in: pulls, authentication, failures, retries.

Webhooks are in ``test_magento_webhooks.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from requests_oauthlib import OAuth1
from rq.registry import ScheduledJobRegistry

from connectors.builtin.magento import MagentoConnector
from connectors.exceptions import ConfigInvalid, RemoteRejected
from hub.integrations.pulls import PULL_QUEUE, run_pull, start_run
from hub.queue import queue
from hub.runtime import Runtime
from tests.conftest import run_jobs
from tests.stand_ins.base import Answer
from tests.stand_ins.hub_helpers import (
    add_instance,
    cursor,
    fact_count,
    facts,
    profile_by_email,
    profile_by_external,
    run,
)
from tests.stand_ins.magento import MagentoStandIn, customer, order, stamp

# Checks of the connector's input handling run on one backend; storage is tested on both.
ONE_BACKEND = pytest.mark.parametrize("backend", ["embedded"])
BEARER_SETTING = "Allow OAuth Access Tokens to be used as standalone Bearer tokens"


@pytest.fixture
def shop() -> Iterator[MagentoStandIn]:
    with MagentoStandIn() as stand_in:
        yield stand_in  # type: ignore[misc]


@pytest.fixture
def locked_shop() -> Iterator[MagentoStandIn]:
    """A 2.4.4+ shop with its default: integration tokens are no bearer tokens."""
    with MagentoStandIn(bearer_enabled=False) as stand_in:
        yield stand_in  # type: ignore[misc]


@pytest.fixture
def rt(hub_runtime: Runtime) -> Runtime:
    hub_runtime.settings = hub_runtime.settings.with_overrides(pull_retry_delays=(0, 0))
    return hub_runtime


def configure(rt: Runtime, shop: MagentoStandIn, **extra: Any) -> None:
    add_instance(
        rt,
        "shop",
        "magento",
        base_url=shop.url,
        page_size=2,
        timeout_seconds=0.3,
        **({"access_token": shop.token} | extra),
    )


def oauth1(shop: MagentoStandIn, **changes: str) -> dict[str, str]:
    """The settings of ``auth: oauth1`` with the integration's four credentials."""
    return {
        "auth": "oauth1",
        "access_token": shop.token,
        "access_token_secret": shop.token_secret,
        "consumer_key": shop.consumer_key,
        "consumer_secret": shop.consumer_secret,
    } | changes


def test_pull_customers_into_profiles(rt: Runtime, shop: MagentoStandIn) -> None:
    shop.put_customers(*(customer(i) for i in range(1, 6)))
    configure(rt, shop)
    run_id = start_run(rt, "shop", "customers")
    run_jobs(rt)  # the pull job, then the evaluation of its facts

    result = run(rt, run_id)
    assert result["status"] == "succeeded", result
    # keyset paging (updated_at >= last seen) re-reads each page's last row: a duplicate
    assert result["facts_accepted"] == 5 and result["pages"] == 4
    assert result["facts_duplicate"] == 3
    assert cursor(rt, "shop", "customers") == stamp(5)
    profile = profile_by_external(rt, "magento", "3")
    assert profile is not None and profile["email"] == "customer3@example.com"
    assert profile["fields"]["first_name"] == "First3"
    assert profile["fields"]["city"] == "Amsterdam"
    assert profile["fields"]["magento_loyalty_tier"] == "gold"
    assert {f.type for f in facts(rt)} == {"profile.upserted"}
    # every request carried the bearer token and asked for updated_at in ascending order
    searches = [r for r in shop.requests if r.path.endswith("/customers/search")]
    assert all(r.header("Authorization") == f"Bearer {shop.token}" for r in searches)
    assert searches[1].arg("searchCriteria[filter_groups][0][filters][0][condition_type]") == "gteq"


def test_second_run_makes_only_new_facts(rt: Runtime, shop: MagentoStandIn) -> None:
    shop.put_customers(*(customer(i) for i in range(1, 5)))
    configure(rt, shop)
    start_run(rt, "shop", "customers")
    run_jobs(rt)
    before = fact_count(rt)

    again = start_run(rt, "shop", "customers")
    run_jobs(rt)
    assert run(rt, again)["facts_accepted"] == 0  # re-read boundary rows are duplicates
    assert fact_count(rt) == before

    shop.put_customers(customer(2, updated=100, email="renamed@example.com"))
    changed = start_run(rt, "shop", "customers")
    run_jobs(rt)
    assert run(rt, changed)["facts_accepted"] == 1
    assert cursor(rt, "shop", "customers") == stamp(100)
    assert profile_by_external(rt, "magento", "2")["fields"]["first_name"] == "First2"


@ONE_BACKEND
def test_many_rows_with_one_timestamp_are_all_read(rt: Runtime, shop: MagentoStandIn) -> None:
    # five customers saved in the same second, page size 2: keyset paging must step through
    shop.put_customers(*(customer(i, updated=50) for i in range(1, 6)), customer(6, updated=60))
    configure(rt, shop)
    run_id = start_run(rt, "shop", "customers")
    run_jobs(rt)
    assert run(rt, run_id)["facts_accepted"] == 6
    assert cursor(rt, "shop", "customers") == stamp(60)


@ONE_BACKEND
def test_orders_of_customers_and_guests(rt: Runtime, shop: MagentoStandIn) -> None:
    shop.put_orders(
        order(1, email="customer1@example.com", customer_id=1, created=10),
        order(2, email="Guest@Example.com", customer_id=None, total=12.0, created=20, updated=30),
    )
    configure(rt, shop)
    run_id = start_run(rt, "shop", "orders")
    run_jobs(rt)

    assert run(rt, run_id)["status"] == "succeeded"
    kinds = sorted((f.type, f.data["order_id"]) for f in facts(rt))
    assert kinds == [("order.placed", "000000001"), ("order.placed", "000000002"),
                     ("order.updated", "000000002")]  # fmt: skip
    placed = facts(rt, type="order.placed")[0]
    assert placed.data["total"] == 99.5 and placed.data["items"][0]["sku"] == "MUG-1"
    guest = profile_by_email(rt, "guest@example.com")
    assert guest is not None and guest["external_ids"] == {}
    assert profile_by_external(rt, "magento", "1")["email"] == "customer1@example.com"


@ONE_BACKEND
def test_unknown_instance_is_404(client: Any, rt: Runtime) -> None:
    assert client.post("/connectors/nope/webhook", data=b"{}").status_code == 404


def test_server_errors_are_retried_then_succeed(rt: Runtime, shop: MagentoStandIn) -> None:
    shop.put_customers(customer(1), customer(2))
    configure(rt, shop)
    shop.fail_next("/customers/search", Answer(500, {"message": "Internal Error"}),
                   Answer(502, b"bad gateway"))  # fmt: skip
    run_id = start_run(rt, "shop", "customers")
    run_jobs(rt)
    result = run(rt, run_id)
    assert result["status"] == "succeeded" and result["attempts"] == 3
    assert result["facts_accepted"] == 2


@ONE_BACKEND
@pytest.mark.parametrize("failure", ["http-500", "timeout"])
def test_persistent_failure_is_recorded_and_cursor_stays(
    rt: Runtime, shop: MagentoStandIn, failure: str
) -> None:
    shop.put_customers(*(customer(i) for i in range(1, 4)))
    configure(rt, shop)
    first = start_run(rt, "shop", "customers")
    run_jobs(rt)
    assert run(rt, first)["status"] == "succeeded"
    before = cursor(rt, "shop", "customers")

    shop.put_customers(customer(9, updated=500))
    answer = (
        Answer(500, {"message": "boom"}) if failure == "http-500" else Answer(200, {}, delay=0.6)
    )
    shop.fail_next("/customers/search", answer, answer, answer)
    run_id = start_run(rt, "shop", "customers")
    run_jobs(rt)

    result = run(rt, run_id)
    assert result["status"] == "failed"
    assert result["attempts"] == 3  # the first try and two retries
    assert ("HTTP 500" if failure == "http-500" else "no answer within 0.3s") in result["error"]
    assert cursor(rt, "shop", "customers") == before
    assert profile_by_external(rt, "magento", "9") is None


@ONE_BACKEND
def test_retry_after_is_honoured(rt: Runtime, shop: MagentoStandIn) -> None:
    shop.put_customers(customer(1))
    configure(rt, shop)
    shop.fail_next("/customers/search", Answer(503, b"busy", {"Retry-After": "120"}))
    run_id = start_run(rt, "shop", "customers")
    started = datetime.now(UTC)
    run_jobs(rt)

    result = run(rt, run_id)
    assert result["status"] == "retrying" and "HTTP 503" in result["error"]
    wait = datetime.fromisoformat(result["next_attempt_at"]) - started
    assert 115 <= wait.total_seconds() <= 125  # the remote's 120 s, not our 0 s delay
    scheduled = ScheduledJobRegistry(queue=queue(PULL_QUEUE, rt.redis))
    assert scheduled.get_job_ids() == [f"pull-{run_id}-2"]

    assert run_pull(run_id, 2)["status"] == "succeeded"  # what the scheduler will run
    assert cursor(rt, "shop", "customers") == stamp(1)


@ONE_BACKEND
def test_bad_token_fails_without_retrying(rt: Runtime, shop: MagentoStandIn) -> None:
    shop.put_customers(customer(1))
    configure(rt, shop)
    shop.token = "rotated-elsewhere"
    run_id = start_run(rt, "shop", "customers")
    run_jobs(rt)
    result = run(rt, run_id)
    assert result["status"] == "failed" and result["attempts"] == 1
    assert "HTTP 401" in result["error"]


def test_test_connection_counts_customers(shop: MagentoStandIn) -> None:
    from connectors.builtin.magento import MagentoConnector

    shop.put_customers(customer(1), customer(2))
    ok = MagentoConnector("shop", {"base_url": shop.url, "access_token": shop.token})
    assert ok.test_connection().endswith(": 2 customers")
    bad = MagentoConnector("shop", {"base_url": shop.url, "access_token": "wrong"})
    with pytest.raises(RemoteRejected, match="HTTP 401"):
        bad.test_connection()


# -- authentication: OAuth 1.0a and the 2.4.4 bearer setting ---------------------------------


def test_oauth1_pull_against_a_shop_that_refuses_bearer_tokens(
    rt: Runtime, locked_shop: MagentoStandIn
) -> None:
    shop = locked_shop
    shop.put_customers(*(customer(i) for i in range(1, 4)))
    shop.put_orders(order(1, email="customer1@example.com", customer_id=1, configurable=True))
    configure(rt, shop, **oauth1(shop))
    customers = start_run(rt, "shop", "customers")
    orders = start_run(rt, "shop", "orders")
    run_jobs(rt)

    assert run(rt, customers)["status"] == "succeeded", run(rt, customers)
    assert run(rt, orders)["status"] == "succeeded", run(rt, orders)
    assert profile_by_external(rt, "magento", "3") is not None
    # every request was signed, and the shop verified every signature (searchCriteria included)
    assert shop.requests and shop.oauth_verified == len(shop.requests)
    for r in shop.requests:
        auth = r.header("Authorization") or ""
        assert auth.startswith("OAuth ") and 'oauth_signature_method="HMAC-SHA256"' in auth
        assert shop.token_secret not in auth and shop.consumer_secret not in auth
    # a configurable product's child line is no order line; the total is the order's
    (placed,) = facts(rt, type="order.placed")
    assert [i["product_type"] for i in placed.data["items"]] == ["configurable", "simple"]
    assert placed.data["total"] == 99.5


@ONE_BACKEND
def test_bearer_token_refused_by_the_shop_says_what_to_change(
    rt: Runtime, locked_shop: MagentoStandIn
) -> None:
    locked_shop.put_customers(customer(1))
    configure(rt, locked_shop)  # auth: bearer, the default
    run_id = start_run(rt, "shop", "customers")
    run_jobs(rt)
    result = run(rt, run_id)
    assert result["status"] == "failed" and result["attempts"] == 1  # no retry: it cannot pass
    assert "HTTP 401" in result["error"]
    # Magento's own message, placeholders filled in, and the way out
    assert "The consumer isn't authorized to access Magento_Customer::customer" in result["error"]
    assert BEARER_SETTING in result["error"] and "auth to oauth1" in result["error"]
    assert fact_count(rt) == 0

    connector = MagentoConnector("shop", {"base_url": locked_shop.url,
                                          "access_token": locked_shop.token})  # fmt: skip
    with pytest.raises(RemoteRejected, match=BEARER_SETTING):
        connector.test_connection()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"access_token_secret": "wrong"}, "The signature is invalid. Verify and try again"),
        ({"consumer_secret": "wrong"}, "The signature is invalid. Verify and try again"),
        ({"consumer_key": "unknown"}, "A consumer having the specified key does not exist"),
    ],
)
def test_oauth1_with_wrong_credentials_fails_with_magentos_message(
    locked_shop: MagentoStandIn, change: dict[str, str], message: str
) -> None:
    connector = MagentoConnector(
        "shop", {"base_url": locked_shop.url, **oauth1(locked_shop, **change)}
    )
    with pytest.raises(RemoteRejected, match=message) as caught:
        connector.test_connection()
    assert caught.value.status == 401 and "four credentials" in str(caught.value)
    assert locked_shop.oauth_verified == 0


def test_oauth1_test_connection(locked_shop: MagentoStandIn) -> None:
    locked_shop.put_customers(customer(1), customer(2))
    connector = MagentoConnector("shop", {"base_url": locked_shop.url, **oauth1(locked_shop)})
    assert connector.test_connection().endswith(": 2 customers")
    assert locked_shop.oauth_verified == 1


def test_stand_in_checks_signatures_as_magento_does(locked_shop: MagentoStandIn) -> None:
    """The stand-in refuses what Magento 2.4 refuses, so the OAuth tests can fail."""
    url = f"{locked_shop.url}/rest/V1/customers/search"
    params = {"searchCriteria[pageSize]": "1"}
    key = (locked_shop.consumer_key, locked_shop.consumer_secret,
           locked_shop.token, locked_shop.token_secret)  # fmt: skip
    sha1 = requests.get(url, params=params, auth=OAuth1(*key, signature_method="HMAC-SHA1"))
    assert sha1.status_code == 400
    assert sha1.content == (
        b'{"message":"Signature method %1 is not supported","parameters":["HMAC-SHA1"]}'
    )
    good = OAuth1(*key, signature_method="HMAC-SHA256")
    assert requests.get(url, params=params, auth=good).status_code == 200
    # a parameter changed after signing (the query is part of the signature base string)
    prepared = requests.Request("GET", url, params=params, auth=good).prepare()
    prepared.url = prepared.url.replace("pageSize%5D=1", "pageSize%5D=2")
    tampered = requests.Session().send(prepared)
    assert tampered.status_code == 401
    assert tampered.json() == {"message": "The signature is invalid. Verify and try again."}


def test_oauth1_needs_all_four_credentials() -> None:
    with pytest.raises(ConfigInvalid) as caught:
        MagentoConnector.validate_config(
            {"base_url": "https://shop.example", "auth": "oauth1", "access_token": "t"}
        )
    assert {p.field for p in caught.value.problems} == {
        "access_token_secret",
        "consumer_key",
        "consumer_secret",
    }


# -- consent from customer reads ----------------------------------------------------------


def test_pulled_is_subscribed_maps_to_consent_and_false_states_nothing(
    rt: Runtime, shop: MagentoStandIn
) -> None:
    shop.put_customers(customer(1, subscribed=True), customer(2, subscribed=False))
    configure(rt, shop)
    start_run(rt, "shop", "customers")
    run_jobs(rt)
    yes, no = profile_by_external(rt, "magento", "1"), profile_by_external(rt, "magento", "2")
    assert yes is not None and yes["status"] == "subscribed"
    assert no is not None and no["status"] == "unconfirmed"  # false: no consent known
    fact = next(f for f in facts(rt) if f.data["customer_id"] == "1")
    consent = fact.profile_ref["consent"]
    assert consent["status"] == "subscribed" and not consent.get("explicit")
    assert "is_subscribed=true" in consent["proof"]
    assert "consent" not in next(f for f in facts(rt) if f.data["customer_id"] == "2").profile_ref


@ONE_BACKEND
def test_is_subscribed_neither_unsubscribes_nor_resubscribes(
    client: Any, auth: dict[str, str], rt: Runtime, shop: MagentoStandIn
) -> None:
    shop.put_customers(customer(1, subscribed=True), customer(2, subscribed=True))
    configure(rt, shop)
    start_run(rt, "shop", "customers")
    run_jobs(rt)
    assert profile_by_external(rt, "magento", "1")["status"] == "subscribed"
    # customer 1 unsubscribes from the hub's mail; customer 2's flag turns false in the shop
    one = profile_by_external(rt, "magento", "1")["id"]
    resp = client.post(f"/api/v1/profiles/{one}/unsubscribe", headers=auth)
    assert resp.status_code == 200, resp.get_json()
    shop.put_customers(customer(1, updated=50, subscribed=True),
                       customer(2, updated=50, subscribed=False))  # fmt: skip
    start_run(rt, "shop", "customers")
    run_jobs(rt)
    # a plain sync of "true" does not re-subscribe; "false" is no opt-out
    assert profile_by_external(rt, "magento", "1")["status"] == "unsubscribed"
    assert profile_by_external(rt, "magento", "2")["status"] == "subscribed"
