"""Adobe Commerce webhooks through the hub's real HTTP endpoint, in every shape the shop sends.

Bodies are the vendor samples of ``tests/stand_ins/vendor/magento/`` byte for byte, or payloads
written as PHP writes them (:func:`tests.stand_ins.magento.php_json`), signed as the Adobe
Commerce webhook module signs them (:class:`tests.stand_ins.magento.AdobeWebhooks`).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from connectors.builtin.magento import SIGNATURE_HEADER, _verify_signature, sign_body
from hub.integrations.models import RefusedDelivery
from hub.models import ConsentEvent
from hub.runtime import Runtime
from tests.conftest import run_jobs
from tests.stand_ins.hub_helpers import (
    add_instance,
    fact_count,
    facts,
    profile_by_email,
    profile_by_external,
)
from tests.stand_ins.magento import SAMPLES, AdobeWebhooks, php_json, sample

TOKEN = "hook-token-abc"
SUCCESS = {"op": "success"}
ONE_BACKEND = pytest.mark.parametrize("backend", ["embedded"])


@pytest.fixture(scope="module")
def adobe() -> AdobeWebhooks:
    """The shop's sender; the hook sends the hub's token as a configured header too."""
    return AdobeWebhooks({"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def shop(hub_runtime: Runtime, adobe: AdobeWebhooks) -> Runtime:
    add_instance(
        hub_runtime,
        "shop",
        "magento",
        base_url="http://127.0.0.1:9",
        webhook_public_key=adobe.public_key,
        webhook_token=TOKEN,
    )
    return hub_runtime


def send(hub_url: str, adobe: AdobeWebhooks, payload: Any, *, query: str = "") -> requests.Response:
    body, headers = adobe.delivery(payload)
    return requests.post(f"{hub_url}/connectors/shop/webhook{query}", data=body, headers=headers)


def success(resp: requests.Response) -> None:
    """What Adobe Commerce needs: exactly 200 and a JSON object with ``op`` success."""
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == json.loads(sample("response-success.json"))


def refused(rt: Runtime) -> list[RefusedDelivery]:
    with rt.db.session() as s:
        return list(s.scalars(select(RefusedDelivery).order_by(RefusedDelivery.id)))


def ledger(rt: Runtime, profile_id: int) -> list[dict[str, Any]]:
    with rt.db.session() as s:
        rows = s.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.profile_id == profile_id)
            .order_by(ConsentEvent.id)
        )
        return [r.as_dict() for r in rows]


def count_ledger(rt: Runtime) -> int:
    with rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(ConsentEvent)) or 0


def subscriber(status: int, *, changed: datetime, sid: str = "3", email: str = "") -> bytes:
    """An ``observer.newsletter_subscriber_save_after`` body, as the vendor sample is built."""
    record = json.loads(sample("observer-newsletter_subscriber_save_after.json"))["data"]
    model = record["subscriber"] | {
        "subscriber_id": sid,
        "subscriber_status": status,
        "change_status_at": changed.strftime("%Y-%m-%d %H:%M:%S"),  # gmtDate(): UTC
    }
    if email:
        model["subscriber_email"] = email
    return php_json(
        {
            "subject": [],
            "eventName": "newsletter_subscriber_save_after",
            "data": {"data_object": model, "subscriber": model},
        }
    )


# -- shapes ----------------------------------------------------------------------------------


def test_observer_customer_save_after_as_sent(
    hub_url: str, shop: Runtime, adobe: AdobeWebhooks
) -> None:
    body = sample("observer-customer_save_after.json")
    success(send(hub_url, adobe, body))
    success(send(hub_url, adobe, body))  # a replay: the same fact, a duplicate
    assert fact_count(shop) == 1

    run_jobs(shop)
    profile = profile_by_external(shop, "magento", "7")
    assert profile is not None and profile["email"] == "jane.doe@example.com"
    assert profile["fields"]["first_name"] == "Jane"
    assert profile["fields"]["gender"] == "female"  # model data: "2", a string
    assert profile["fields"]["magento_group_id"] == 1
    assert "password_hash" not in json.dumps(profile)
    # no consent in a customer save: the profile is created without it, and nothing is ledgered
    assert profile["status"] == "unconfirmed"
    assert ledger(shop, profile["id"]) == []


def test_observer_order_and_plugin_place_are_one_order(
    hub_url: str, shop: Runtime, adobe: AdobeWebhooks
) -> None:
    success(send(hub_url, adobe, sample("plugin-magento-sales-api-order_management-place.json")))
    success(send(hub_url, adobe, sample("observer-sales_order_save_after.json")))

    placed = facts(shop, type="order.placed")
    assert len(placed) == 1  # both hooks name order 55: the second is a duplicate
    data = placed[0].data
    assert data["order_id"] == "000000055" and data["total"] == 147.0
    # the configurable's child line (parent_item_id "101") is not an order line
    assert [(i["name"], i["qty"]) for i in data["items"]] == [
        ("Chaz Kangeroo Hoodie", 1.0),
        ("Overnight Duffle", 2.0),
    ]
    assert placed[0].profile_ref["external_ids"] == {"magento": "7"}


@ONE_BACKEND
def test_order_before_it_is_saved_and_items_keyed_by_id(
    hub_url: str, shop: Runtime, adobe: AdobeWebhooks
) -> None:
    payload = json.loads(sample("plugin-magento-sales-api-order_management-place.json"))
    unsaved = {k: v for k, v in payload["order"].items() if k not in ("entity_id", "created_at")}
    # a ``before`` plugin: no entity_id nor created_at yet; the child line knows its parent
    # only as an object, parent_item_id is written on save
    unsaved["items"][1] = unsaved["items"][1] | {
        "parent_item_id": None,
        "parent_item": {"sku": "x"},
    }
    success(send(hub_url, adobe, {"subject": [], "order": unsaved}))
    (placed,) = facts(shop, type="order.placed")
    assert placed.source_id == "shop:order:increment:000000055:placed"
    assert len(placed.data["items"]) == 2

    # an order loaded from the database: PHP encodes its items array keyed by item id
    loaded = json.loads(sample("observer-sales_order_save_after.json"))
    order = loaded["data"]["order"] | {"entity_id": "56", "increment_id": "000000056"}
    order["items"] = {i["item_id"]: i for i in order["items"]}
    success(send(hub_url, adobe, {"subject": [], "eventName": "sales_order_save_after",
                                  "data": {"data_object": order, "order": order}}))  # fmt: skip
    other = facts(shop, type="order.placed")[1]
    assert [i["sku"] for i in other.data["items"]] == ["MH01-XS-Black", "24-WB04"]


@ONE_BACKEND
def test_fields_reshaped_bodies(hub_url: str, shop: Runtime, adobe: AdobeWebhooks) -> None:
    # fields kept the customer object: recognised by its shape
    success(send(hub_url, adobe, sample("hook-fields-customer-nested.json")))
    # fields named flat: the hook's URL says which hook it is
    flat = sample("hook-fields-customer-flat.json")
    success(send(hub_url, adobe, flat, query="?hook=observer.customer_save_after"))
    success(send(hub_url, adobe, flat, query="?hook=observer.customer_save_after"))  # replay
    assert fact_count(shop) == 2
    ids = {f.source_id for f in facts(shop)}
    assert "shop:customer:7:2026-01-05 09:15:02" in ids
    run_jobs(shop)
    assert profile_by_external(shop, "magento", "7")["email"] == "jane.doe@example.com"
    assert refused(shop) == []


@ONE_BACKEND
@pytest.mark.parametrize(
    ("name", "query", "field"),
    [
        ("hook-fields-customer-flat.json", "", "eventName"),  # no way to tell the hook
        ("hook-fields-reshaped.json", "", "eventName"),  # Adobe's shipping-rates example
        ("hook-fields-customer-flat.json", "?hook=observer.catalog_product_save_after", "hook"),
    ],
)
def test_bodies_that_name_no_known_hook_are_refused_with_success(
    hub_url: str, shop: Runtime, adobe: AdobeWebhooks, name: str, query: str, field: str
) -> None:
    success(send(hub_url, adobe, sample(name), query=query))
    assert fact_count(shop) == 0
    (kept,) = refused(shop)
    assert kept.field == field and kept.body == sample(name)
    if field == "eventName":
        assert "?hook=" in kept.message  # the operator is told what to change


@ONE_BACKEND
def test_the_older_prefixed_event_name_is_still_read(
    hub_url: str, shop: Runtime, adobe: AdobeWebhooks
) -> None:
    payload = json.loads(sample("observer-customer_save_after.json"))
    payload["eventName"] = "observer.customer_save_after"
    success(send(hub_url, adobe, payload))
    assert [f.type for f in facts(shop)] == ["profile.upserted"]


@ONE_BACKEND
def test_the_vendor_signature_vector(hub_runtime: Runtime, hub_url: str) -> None:
    vector = SAMPLES / "signature-vector"
    body = (vector / "body.json").read_bytes().rstrip(b"\n")
    signature = (vector / "signature.txt").read_text().strip()
    public = (vector / "public.pem").read_text()
    # the stand-in writes JSON as PHP does: the vector's bytes, escaped slashes and all
    assert php_json(json.loads(body)) == body
    assert b"https:\\/\\/shop" in body and b"Ren\\u00e9e" in body
    _verify_signature(public, body, signature)  # raises if it does not verify

    add_instance(hub_runtime, "shop", "magento", base_url="http://127.0.0.1:9",
                 webhook_public_key=public)  # fmt: skip
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
    resp = requests.post(f"{hub_url}/connectors/shop/webhook", data=body, headers=headers)
    success(resp)
    (fact,) = facts(hub_runtime)
    assert fact.profile_ref["fields"]["first_name"] == "Renée"
    # re-serialised the Python way, the same document no longer matches the signature
    resp = requests.post(
        f"{hub_url}/connectors/shop/webhook", data=json.dumps(json.loads(body)), headers=headers
    )
    assert resp.status_code == 401


# -- refusals ---------------------------------------------------------------------------------


@ONE_BACKEND
@pytest.mark.parametrize(
    "tamper", ["unsigned", "forged", "body-changed", "bad-base64", "no-token", "wrong-token"]
)
def test_unsigned_and_forged_deliveries_are_401_and_nothing_is_kept(
    hub_url: str, shop: Runtime, adobe: AdobeWebhooks, tamper: str
) -> None:
    body, headers = adobe.delivery(sample("observer-customer_save_after.json"))
    if tamper == "unsigned":
        del headers[SIGNATURE_HEADER]
    elif tamper == "forged":  # signed the Adobe way, by a key the shop never had
        intruder = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        headers[SIGNATURE_HEADER] = sign_body(intruder, body)
    elif tamper == "body-changed":
        body = body.replace(b"jane.doe@", b"intruder@")
    elif tamper == "bad-base64":
        headers[SIGNATURE_HEADER] = "%%%" + base64.b64encode(b"x").decode()
    elif tamper == "no-token":
        del headers["Authorization"]
    else:
        headers["Authorization"] = "Bearer guess"
    resp = requests.post(f"{hub_url}/connectors/shop/webhook", data=body, headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_signature"
    assert fact_count(shop) == 0 and refused(shop) == []


@ONE_BACKEND
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"{not json", ""),
        (b"[]", ""),
        ({"subject": [], "eventName": "catalog_product_save_after", "data": {}}, "eventName"),
        ({"subject": [], "eventName": "customer_save_after", "data": {}}, "data.customer"),
        (
            {"eventName": "customer_save_after", "data": {"customer": {"entity_id": "1"}}},
            "data.customer.email",
        ),
        (
            {"eventName": "customer_save_after",
             "data": {"customer": {"entity_id": "1", "email": "not-an-email"}}},
            "data.customer.email",
        ),
        (
            {"subject": [], "order": {"entity_id": "1", "customer_email": "a@b.example",
                                      "grand_total": "lots", "created_at": "2026-01-01"}},
            "order.grand_total",
        ),
        (
            {"eventName": "newsletter_subscriber_save_after",
             "data": {"subscriber": {"subscriber_id": "1", "subscriber_status": 9}}},
            "data.subscriber.subscriber_status",
        ),
    ],
)  # fmt: skip
def test_refused_payload_answers_success_and_stores_nothing(
    hub_url: str, shop: Runtime, adobe: AdobeWebhooks, payload: Any, field: str
) -> None:
    success(send(hub_url, adobe, payload))  # a required hook must not abort the checkout
    assert fact_count(shop) == 0
    (kept,) = refused(shop)
    assert kept.field == (field or None)


# -- consent ----------------------------------------------------------------------------------


def test_newsletter_consent_both_ways(hub_url: str, shop: Runtime, adobe: AdobeWebhooks) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    # the customer exists first, without consent
    success(send(hub_url, adobe, sample("observer-customer_save_after.json")))
    run_jobs(shop)
    profile = profile_by_external(shop, "magento", "7")
    assert profile is not None and profile["status"] == "unconfirmed"

    # subscribed just now: status 1, change_status_at written by this very save
    success(send(hub_url, adobe, subscriber(1, changed=now)))
    run_jobs(shop)
    assert profile_by_external(shop, "magento", "7")["status"] == "subscribed"
    (entry,) = ledger(shop, profile["id"])
    assert entry["stated"] == "subscribed" and entry["explicit"] is True
    assert entry["proof"] == "magento newsletter_subscriber.subscriber_status=1 (subscribed)"
    assert entry["source"] == "magento"

    # unsubscribed in the shop (the vendor sample: status 3)
    unsubscribed = sample("observer-newsletter_subscriber_save_after-unsubscribed.json")
    success(send(hub_url, adobe, unsubscribed))
    run_jobs(shop)
    assert profile_by_external(shop, "magento", "7")["status"] == "unsubscribed"

    # a later save with status 1 but an old change_status_at (the vendor sample): the status
    # did not change in that save, so it is no opt-in and cannot re-subscribe
    success(send(hub_url, adobe, sample("observer-newsletter_subscriber_save_after.json")))
    run_jobs(shop)
    assert profile_by_external(shop, "magento", "7")["status"] == "unsubscribed"
    last = ledger(shop, profile["id"])[-1]
    assert last["explicit"] is False and last["outcome"] == "ignored"

    # subscribing again in the shop is an explicit opt-in: it applies
    success(send(hub_url, adobe, subscriber(1, changed=now + timedelta(seconds=5))))
    run_jobs(shop)
    assert profile_by_external(shop, "magento", "7")["status"] == "subscribed"
    assert [e["stated"] for e in ledger(shop, profile["id"])] == [
        "subscribed", "unsubscribed", "subscribed", "subscribed"
    ]  # fmt: skip


@ONE_BACKEND
@pytest.mark.parametrize("status", [2, 4])
def test_pending_and_unconfirmed_subscribers_state_nothing(
    hub_url: str, shop: Runtime, adobe: AdobeWebhooks, status: int
) -> None:
    body = subscriber(status, changed=datetime.now(UTC), email="guest@example.com")
    success(send(hub_url, adobe, body))
    assert fact_count(shop) == 0 and refused(shop) == []  # a valid delivery with no fact
    run_jobs(shop)
    assert profile_by_email(shop, "guest@example.com") is None
    assert count_ledger(shop) == 0


@ONE_BACKEND
def test_a_guest_subscription_creates_a_subscribed_profile_by_email(
    hub_url: str, shop: Runtime, adobe: AdobeWebhooks
) -> None:
    payload = json.loads(subscriber(1, changed=datetime.now(UTC), email="guest@example.com"))
    for model in payload["data"].values():
        model["customer_id"] = "0"  # a guest subscriber
    success(send(hub_url, adobe, payload))
    run_jobs(shop)
    profile = profile_by_email(shop, "guest@example.com")
    assert profile is not None and profile["status"] == "subscribed"
    assert profile["external_ids"] == {}
