"""Magento 2 / Adobe Commerce: customers and orders, pulled over REST or pushed by webhooks.

Customers become ``profile.upserted`` facts (external id ``magento: <id>``); orders become an
``order.placed`` fact once per order and an ``order.updated`` fact per later change. A guest
order carries only the email, so it finds or makes the profile by email.

Pull uses ``/rest/V1/customers/search`` and ``/rest/V1/orders`` with ``searchCriteria`` on
``updated_at`` (ascending) and a bearer token. Paging is by key, not offset: each request asks
for ``updated_at >= <last seen>`` again, so a record changed during a run moves behind the
cursor instead of shifting an unread one onto a page already read. Records at the boundary
are read twice and become duplicate facts (their ``source_id`` holds ``updated_at``).

Push takes Adobe Commerce webhook payloads (``{"eventName": "observer.customer_save_after",
"data": {"customer": {...}}}`` and ``observer.sales_order_save_after`` with ``data.order``),
checked with the ``x-adobe-commerce-webhook-signature`` header (RSA-SHA256 by the key pair of
Stores > Configuration > Adobe Services > Webhooks, over the base64 of the raw body) and/or a
bearer token set as a webhook header.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterator
from typing import Any

from connectors.base import (
    ConfigField,
    Connector,
    ContractExample,
    FieldKind,
    Page,
    WebhookRequest,
)
from connectors.builtin._util import as_dict, as_list, compact, email_or_none, make_fact, parse_time
from connectors.builtin._util import require as need
from connectors.exceptions import (
    ConfigProblem,
    NotSupported,
    PayloadInvalid,
    SignatureInvalid,
)
from connectors.http import RemoteClient
from hub.facts import FactIn

SIGNATURE_HEADER = "x-adobe-commerce-webhook-signature"
GENDERS = {1: "male", 2: "female", 3: "not specified"}
EVENTS = {
    "observer.customer_save_after": "customer",
    "observer.sales_order_save_after": "order",
}
ENDPOINTS = {"customers": "rest/V1/customers/search", "orders": "rest/V1/orders"}


class MagentoConnector(Connector):
    """Magento 2 / Adobe Commerce shop."""

    name = "magento"
    title = "Magento 2 / Adobe Commerce"
    streams = ("customers", "orders")
    config_fields = (
        ConfigField("base_url", FieldKind.URL, required=True, help="shop URL, without /rest"),
        ConfigField(
            "access_token", secret=True, help="integration access token (bearer) for pulls"
        ),
        ConfigField(
            "webhook_public_key",
            FieldKind.TEXT,
            help="PEM public key of the webhook signature key pair (Adobe Services > Webhooks)",
        ),
        ConfigField(
            "webhook_token",
            secret=True,
            help="token the webhooks send as 'Authorization: Bearer <token>'",
        ),
        ConfigField("page_size", FieldKind.INTEGER, default=100, minimum=1),
        ConfigField("timeout_seconds", FieldKind.NUMBER, default=30.0, minimum=0.1),
        ConfigField("max_inline_wait", FieldKind.NUMBER, default=5.0, minimum=0),
    )

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[ConfigProblem]:
        """``webhook_public_key``, when set, must be a PEM RSA public key."""
        key = config.get("webhook_public_key")
        if key:
            try:
                _load_public_key(key)
            except ValueError:
                return [ConfigProblem("webhook_public_key", "is not a PEM RSA public key")]
        return []

    # -- push ----------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Check the bearer token and the RSA signature header, each if it is configured.

        A configured token is compared in constant time; a configured public key must verify the
        signature over the base64 of the raw body. With neither configured, every request is
        refused.
        """
        key, token = self.config["webhook_public_key"], self.config["webhook_token"]
        if not key and not token:
            raise SignatureInvalid("no webhook key or token is configured for this instance")
        if token:
            given = request.header("Authorization") or ""
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise SignatureInvalid("missing or wrong bearer token")
        if key:
            _verify_signature(key, request.body, request.header(SIGNATURE_HEADER))

    def parse(self, request: WebhookRequest) -> list[FactIn]:
        """A customer save as a profile fact, an order save as order facts (:meth:`order_facts`)."""
        body = as_dict(request.json(), "")
        event = need(body, "eventName", "")
        kind = EVENTS.get(str(event))
        if kind is None:
            raise PayloadInvalid("eventName", f"{event!r} is not one of {', '.join(EVENTS)}")
        data = as_dict(need(body, "data", ""), "data")
        record = as_dict(need(data, kind, "data"), f"data.{kind}")
        if kind == "customer":
            return [self.customer_fact(record, f"data.{kind}")]
        return self.order_facts(record, f"data.{kind}")

    # -- pull ----------------------------------------------------------------------------

    def client(self) -> RemoteClient:
        """A REST client, sending the integration's access token as bearer token if one is set."""
        client = RemoteClient(
            self.config["base_url"],
            timeout=self.config["timeout_seconds"],
            max_inline_wait=self.config["max_inline_wait"],
        )
        if self.config["access_token"]:
            client.session.headers["Authorization"] = f"Bearer {self.config['access_token']}"
        return client

    def pull(self, stream: str, cursor: str | None) -> Iterator[Page]:
        """Pages of customers or orders updated at or after ``cursor`` (their ``updated_at``)."""
        if stream not in ENDPOINTS:
            raise NotSupported(f"magento has no stream {stream!r} (streams: customers, orders)")
        client, size = self.client(), self.config["page_size"]
        since, page_no = cursor, 1
        while True:
            body = client.get_json(ENDPOINTS[stream], params=search_criteria(since, page_no, size))
            items = as_list(as_dict(body, "").get("items") or [], "items")
            total = int(body.get("total_count") or 0)
            if not items:
                return
            facts: list[FactIn] = []
            for n, item in enumerate(items):
                path = f"items.{n}"
                if stream == "customers":
                    facts.append(self.customer_fact(as_dict(item, path), path))
                else:
                    facts.extend(self.order_facts(as_dict(item, path), path))
            last = str(need(items[-1], "updated_at", f"items.{len(items) - 1}"))
            # Magento answers a page past the end with the last page again: count, don't trust.
            done = len(items) < size or page_no * size >= total
            if last == since:
                page_no += 1  # a full page of one timestamp: step through it by offset
            else:
                since, page_no = last, 1
            yield Page(facts, since)
            if done:
                return

    def test_connection(self) -> str:
        """Count the shop's customers with the configured access token."""
        body = self.client().get_json(ENDPOINTS["customers"], params=search_criteria(None, 1, 1))
        return f"connected to {self.config['base_url']}: {body.get('total_count', 0)} customers"

    # -- mapping -------------------------------------------------------------------------

    def customer_fact(self, c: dict[str, Any], path: str) -> FactIn:
        """A ``profile.upserted`` fact from a customer record at ``path`` (for errors)."""
        cid = c.get("id", c.get("entity_id"))
        if cid in (None, ""):
            raise PayloadInvalid(f"{path}.id", "is required")
        email = need(c, "email", path)
        updated = str(c.get("updated_at") or need(c, "created_at", path))
        fields = compact(
            {
                "first_name": c.get("firstname"),
                "last_name": c.get("lastname"),
                "date_of_birth": c.get("dob"),
                "gender": GENDERS.get(_int(c.get("gender")) or 0),
                "magento_group_id": _int(c.get("group_id")),
                "magento_store_id": _int(c.get("store_id")),
                "magento_website_id": _int(c.get("website_id")),
                "magento_created_at": c.get("created_at"),
            }
        )
        fields.update(_address_fields(c.get("addresses"), c.get("default_billing")))
        for attr in c.get("custom_attributes") or []:
            if isinstance(attr, dict) and attr.get("attribute_code"):
                fields[f"magento_{attr['attribute_code']}"] = attr.get("value")
        return make_fact(
            {"profile.email": f"{path}.email", "occurred_at": f"{path}.updated_at"},
            type="profile.upserted",
            source=self.name,
            source_id=f"{self.instance}:customer:{cid}:{updated}",
            occurred_at=parse_time(updated, f"{path}.updated_at"),
            profile={"email": email, "external_ids": {"magento": str(cid)}, "fields": fields},
            data={"instance": self.instance, "customer_id": str(cid)},
        )

    def order_facts(self, o: dict[str, Any], path: str) -> list[FactIn]:
        """``order.placed`` for an order, and ``order.updated`` as well if it changed since.

        A guest order names its profile by email only; a customer's order also by its customer id.
        """
        oid = need(o, "entity_id", path)
        email = need(o, "customer_email", path)
        created = str(need(o, "created_at", path))
        updated = str(o.get("updated_at") or created)
        guest = bool(_int(o.get("customer_is_guest"))) or not o.get("customer_id")
        profile: dict[str, Any] = {
            "email": email_or_none(email) or email,
            "fields": compact(
                {"first_name": o.get("customer_firstname"), "last_name": o.get("customer_lastname")}
            ),
        }
        if not guest:
            profile["external_ids"] = {"magento": str(o["customer_id"])}
        try:
            total = float(need(o, "grand_total", path))
        except (TypeError, ValueError):
            raise PayloadInvalid(f"{path}.grand_total", "expected a number") from None
        data = {
            "instance": self.instance,
            "order_id": str(o.get("increment_id") or oid),
            "entity_id": str(oid),
            "status": o.get("status"),
            "state": o.get("state"),
            "total": total,
            "currency": o.get("order_currency_code"),
            "guest": guest,
            "items": [_item(i) for i in o.get("items") or [] if isinstance(i, dict)],
        }
        names = {"profile.email": f"{path}.customer_email"}
        facts = [
            make_fact(
                names,
                type="order.placed",
                source=self.name,
                source_id=f"{self.instance}:order:{oid}:placed",
                occurred_at=parse_time(created, f"{path}.created_at"),
                profile=profile,
                data=data,
            )
        ]
        if updated != created:
            facts.append(
                make_fact(
                    names,
                    type="order.updated",
                    source=self.name,
                    source_id=f"{self.instance}:order:{oid}:{updated}",
                    occurred_at=parse_time(updated, f"{path}.updated_at"),
                    profile=profile,
                    data=data,
                )
            )
        return facts

    @classmethod
    def contract_example(cls) -> ContractExample:
        """A webhook signed by a key pair made for the run, and malformed bodies, for the tests."""
        from cryptography.hazmat.primitives.asymmetric import rsa

        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        config = {
            "base_url": "http://127.0.0.1:9",
            "webhook_public_key": public_pem(private),
            "webhook_token": "contract-token-123",
        }

        def sign(body: bytes, content_type: str = "application/json") -> WebhookRequest:
            headers = {
                "Authorization": f"Bearer {config['webhook_token']}",
                SIGNATURE_HEADER: sign_body(private, body),
                "Content-Type": content_type,
            }
            return WebhookRequest(body, headers)

        body = (
            b'{"eventName":"observer.customer_save_after","data":{"customer":{"entity_id":"7",'
            b'"email":"ann@example.com","firstname":"Ann","updated_at":"2026-01-02 03:04:05"}}}'
        )
        return ContractExample(
            config=config,
            sign=sign,
            webhooks=[sign(body)],
            malformed=[
                (b"{not json", "application/json"),
                (b'{"eventName":"observer.customer_save_after","data":{}}', "application/json"),
            ],
        )


def search_criteria(since: str | None, page: int, size: int) -> dict[str, str | int]:
    """Magento ``searchCriteria`` query parameters: updated_at >= since, ascending, one page."""
    params: dict[str, str | int] = {
        "searchCriteria[sortOrders][0][field]": "updated_at",
        "searchCriteria[sortOrders][0][direction]": "ASC",
        "searchCriteria[pageSize]": size,
        "searchCriteria[currentPage]": page,
    }
    if since:
        f = "searchCriteria[filter_groups][0][filters][0]"
        params.update(
            {f"{f}[field]": "updated_at", f"{f}[value]": since, f"{f}[condition_type]": "gteq"}
        )
    return params


def _verify_signature(pem: str, body: bytes, signature: str | None) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    if not signature:
        raise SignatureInvalid(f"missing {SIGNATURE_HEADER} header")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} is not base64") from None
    try:
        _load_public_key(pem).verify(
            raw, base64.b64encode(body), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        raise SignatureInvalid("signature does not match the body") from None


def _load_public_key(pem: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem.strip().encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA key")
    return key


def sign_body(private_key: Any, body: bytes) -> str:
    """What Adobe Commerce sends in the signature header (used by tests and stand-ins)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    raw = private_key.sign(base64.b64encode(body), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode()


def public_pem(private_key: Any) -> str:
    """The PEM public key of ``private_key``, as ``webhook_public_key`` takes it (for tests)."""
    from cryptography.hazmat.primitives import serialization

    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _address_fields(addresses: Any, default_billing: Any) -> dict[str, Any]:
    if not isinstance(addresses, list) or not addresses:
        return {}
    chosen = next(
        (
            a
            for a in addresses
            if isinstance(a, dict)
            and (a.get("default_billing") or str(a.get("id")) == str(default_billing))
        ),
        addresses[0],
    )
    if not isinstance(chosen, dict):
        return {}
    street = chosen.get("street")
    return compact(
        {
            "street": ", ".join(street) if isinstance(street, list) else street,
            "city": chosen.get("city"),
            "postcode": chosen.get("postcode"),
            "country": chosen.get("country_id"),
            "telephone": chosen.get("telephone"),
            "company": chosen.get("company"),
        }
    )


def _item(i: dict[str, Any]) -> dict[str, Any]:
    return compact(
        {
            "sku": i.get("sku"),
            "name": i.get("name"),
            "qty": _number(i.get("qty_ordered")),
            "price": _number(i.get("price")),
        }
    )


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
