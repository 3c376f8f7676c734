"""Magento 2 connector against the Magento stand-in: pulls, webhooks, failures, retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from rq.registry import ScheduledJobRegistry

from connectors.builtin.magento import SIGNATURE_HEADER, public_pem, sign_body
from connectors.exceptions import RemoteRejected
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
PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
TOKEN = "hook-token-abc"


@pytest.fixture
def shop() -> Iterator[MagentoStandIn]:
    with MagentoStandIn() as stand_in:
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
        access_token=shop.token,
        webhook_public_key=public_pem(PRIVATE_KEY),
        webhook_token=TOKEN,
        page_size=2,
        timeout_seconds=0.3,
        **extra,
    )


def signed(body: dict[str, Any] | bytes) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {TOKEN}",
        SIGNATURE_HEADER: sign_body(PRIVATE_KEY, raw),
    }


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


def test_webhook_customer_saved_and_replayed(
    client: Any, rt: Runtime, shop: MagentoStandIn
) -> None:
    configure(rt, shop)
    payload = {
        "eventName": "observer.customer_save_after",
        "data": {"customer": customer(42) | {"entity_id": 42}},
    }
    body, headers = signed(payload)
    first = client.post("/connectors/shop/webhook", data=body, headers=headers)
    assert first.status_code == 200, first.get_json()
    assert [f["status"] for f in first.get_json()["facts"]] == ["accepted"]

    replay = client.post("/connectors/shop/webhook", data=body, headers=headers)
    assert replay.status_code == 200
    assert replay.get_json()["facts"] == [{"id": first.get_json()["facts"][0]["id"],
                                           "status": "duplicate"}]  # fmt: skip
    assert fact_count(rt) == 1
    run_jobs(rt)
    assert profile_by_external(rt, "magento", "42")["fields"]["last_name"] == "Last42"


@ONE_BACKEND
def test_webhook_order_saved(client: Any, rt: Runtime, shop: MagentoStandIn) -> None:
    configure(rt, shop)
    data = order(7, email="g@example.com", customer_id=None, created=5)
    body, headers = signed(
        {"eventName": "observer.sales_order_save_after", "data": {"order": data}}
    )
    resp = client.post("/connectors/shop/webhook", data=body, headers=headers)
    assert resp.status_code == 200
    assert [f.type for f in facts(rt)] == ["order.placed"]


@ONE_BACKEND
@pytest.mark.parametrize(
    "tamper",
    ["no-signature", "wrong-signature", "body-changed", "no-token", "wrong-token"],
)
def test_webhook_bad_signature_is_401_and_stores_nothing(
    client: Any, rt: Runtime, shop: MagentoStandIn, tamper: str
) -> None:
    configure(rt, shop)
    payload = {"eventName": "observer.customer_save_after", "data": {"customer": customer(1)}}
    body, headers = signed(payload)
    if tamper == "no-signature":
        del headers[SIGNATURE_HEADER]
    elif tamper == "wrong-signature":
        headers[SIGNATURE_HEADER] = sign_body(PRIVATE_KEY, body + b" ")
    elif tamper == "body-changed":
        body = body.replace(b"customer1@", b"intruder1@")
    elif tamper == "no-token":
        del headers["Authorization"]
    else:
        headers["Authorization"] = "Bearer guess"
    resp = client.post("/connectors/shop/webhook", data=body, headers=headers)
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_signature"
    assert fact_count(rt) == 0


@ONE_BACKEND
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"{not json", ""),
        ({"eventName": "observer.catalog_product_save_after", "data": {}}, "eventName"),
        ({"eventName": "observer.customer_save_after", "data": {}}, "data.customer"),
        (
            {"eventName": "observer.customer_save_after", "data": {"customer": {"id": 1}}},
            "data.customer.email",
        ),
        (
            {
                "eventName": "observer.customer_save_after",
                "data": {"customer": customer(1) | {"email": "not-an-email"}},
            },
            "data.customer.email",
        ),
        (
            {
                "eventName": "observer.sales_order_save_after",
                "data": {
                    "order": order(1, email="a@b.example", customer_id=None)
                    | {"grand_total": "lots"}
                },
            },
            "data.order.grand_total",
        ),
    ],
)
def test_webhook_malformed_payload_is_400_naming_the_field(
    client: Any, rt: Runtime, shop: MagentoStandIn, payload: Any, field: str
) -> None:
    configure(rt, shop)
    body, headers = signed(payload)
    resp = client.post("/connectors/shop/webhook", data=body, headers=headers)
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"] == "invalid_payload"
    assert resp.get_json()["field"] == field
    assert fact_count(rt) == 0


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
