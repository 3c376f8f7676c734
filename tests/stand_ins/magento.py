"""Magento 2 / Adobe Commerce stand-in: the REST API the connector pulls, and the webhook sender.

REST (``/rest/V1/customers/search``, ``/rest/V1/orders``): shapes follow the Magento 2 REST
reference (Adobe docs repo ``AdobeDocs/commerce-webapi`` @ e2275b5, admin schema 2.4.8):
``searchCriteria[filter_groups][g][filters][f]`` (field, value, condition_type),
``searchCriteria[sortOrders][n]`` (field, direction), ``pageSize``/``currentPage``; answers
``{"items": [...], "search_criteria": {...}, "total_count": n}``. Like Magento, a page past the
end answers with the last page again. Every answer is written as PHP's ``json_encode`` writes
it (compact, ``/`` as ``\\/``, non-ASCII as ``\\u00e9``; see :func:`php_json`), with
``Content-Type: application/json; charset=utf-8``. Customers carry
``extension_attributes.is_subscribed`` (M2 ``app/code/Magento/Newsletter/etc/
extension_attributes.xml`` @ 05da4bc; ``customer-data-customer-extension-interface`` in the 2.4.8
admin schema); configurable orders carry a parent line and a child line with ``parent_item_id``
(``sales-data-order-item-interface``, same schema; the sample is built, Adobe publishes none).

Authentication, as Magento 2.4.4+ does it:

- OAuth 1.0a: the ``Authorization: OAuth …`` header is checked as M2
  ``lib/internal/Magento/Framework/Oauth/Oauth.php`` @ 447c9b4 checks it: required protocol
  parameters (``"%fieldName" is required. Enter and try again.``, 400), ``HMAC-SHA256`` as the
  only signature method (``Signature method %1 is not supported``, 400; the 2.4.6 report in
  thephpleague/oauth1-client#150), the consumer key (``A consumer having the specified key does
  not exist``, 401, Magento Integration ``TokenProvider``), then the RFC 5849 signature with key
  ``consumer_secret&token_secret`` (``The signature is invalid. Verify and try again.``, 401),
  computed with oauthlib's server-side signature functions over the URL the client used.
  An unknown access token is answered as a bad signature here (Magento's own text for that
  case was not checked).
- Bearer: the integration access token as a bearer token works only while
  ``bearer_enabled`` (Admin > Stores > Configuration > Services > OAuth > Consumer Settings >
  "Allow OAuth Access Tokens to be used as standalone Bearer tokens",
  ``oauth/consumer/enable_integration_as_bearer``; AWA ``gs-authentication-token.md``). When it
  is off, Magento ignores the token and the request runs as a guest, refused with
  ``{"message":"The consumer isn't authorized to access %resources.","parameters":
  {"resources":"Magento_Customer::customer"}}`` and 401 (magento/magento2#38426, #36811).

Webhooks (:class:`AdobeWebhooks`): what ``magento/module-adobe-commerce-webhooks`` 1.17.1 sends
(``tests/stand_ins/vendor/README.md`` section 1): the body is the payload as PHP's
``json_encode`` (Guzzle's ``json`` option) writes it, ``Content-Type: application/json``, an
``x-adobe-commerce-request-id``, and ``x-adobe-commerce-webhook-signature`` = base64 of
RSASSA-PKCS1-v1_5-SHA256 over ``base64(body)`` (``DigitalSignature.php`` with M2
``Base64Json::serialize``). Payload samples are in ``tests/stand_ins/vendor/magento/``.
"""

from __future__ import annotations

import bisect
import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa
from oauthlib.oauth1.rfc5849 import signature as oauth_signature

from connectors.builtin.magento import SIGNATURE_HEADER, public_pem, sign_body
from tests.stand_ins.base import Answer, Request, StandIn

_CRIT = re.compile(r"^searchCriteria\[filter_groups\]\[(\d+)\]\[filters\]\[(\d+)\]\[(\w+)\]$")
_SORT = re.compile(r"^searchCriteria\[sortOrders\]\[(\d+)\]\[(\w+)\]$")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SAMPLES = Path(__file__).parent / "vendor" / "magento"
OAUTH_REQUIRED = (
    "oauth_consumer_key",
    "oauth_signature",
    "oauth_signature_method",
    "oauth_nonce",
    "oauth_timestamp",
    "oauth_token",
)
NOT_AUTHORIZED = {
    "message": "The consumer isn't authorized to access %resources.",
    "parameters": {"resources": "Magento_Customer::customer"},
}


def php_json(value: Any) -> bytes:
    """``value`` as PHP's ``json_encode($value)`` (flags 0) writes it.

    Compact separators, ``/`` escaped as ``\\/``, non-ASCII as lower-case ``\\uXXXX`` escapes
    (surrogate pairs above U+FFFF), as Python's ``ensure_ascii`` writes them too. ``/`` only
    occurs inside strings in JSON text, so escaping it after encoding is exact.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def sample(name: str) -> bytes:
    """A vendor sample's bytes, as recorded under ``tests/stand_ins/vendor/magento/``."""
    return (SAMPLES / name).read_bytes()


def magento_answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    """An answer written as Magento writes one: PHP JSON bytes, its content type."""
    return Answer(
        status,
        php_json(body),
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


def stamp(seconds: int) -> str:
    """Magento's timestamp format (UTC, no zone)."""
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def customer(
    cid: int,
    *,
    updated: int | None = None,
    email: str | None = None,
    subscribed: bool = False,
) -> dict[str, Any]:
    """A REST ``CustomerInterface`` as ``/V1/customers/search`` lists it."""
    return {
        "id": cid,
        "group_id": 1,
        "default_billing": str(1000 + cid),
        "created_at": stamp(cid),
        "updated_at": stamp(cid if updated is None else updated),
        "created_in": "Default Store View",
        "dob": "1990-04-0" + str(cid % 9 + 1),
        "email": email or f"customer{cid}@example.com",
        "firstname": f"First{cid}",
        "lastname": f"Last{cid}",
        "gender": cid % 3 + 1,
        "store_id": 1,
        "website_id": 1,
        "addresses": [
            {
                "id": 1000 + cid,
                "customer_id": cid,
                "region": {"region_code": "NH", "region": "Noord-Holland", "region_id": 0},
                "country_id": "NL",
                "street": [f"Damstraat {cid}"],
                "telephone": "0201234567",
                "postcode": "1012AB",
                "city": "Amsterdam",
                "firstname": f"First{cid}",
                "lastname": f"Last{cid}",
                "default_billing": True,
            }
        ],
        "disable_auto_group_change": 0,
        "extension_attributes": {"is_subscribed": subscribed},
        "custom_attributes": [{"attribute_code": "loyalty_tier", "value": "gold"}],
    }


def order(
    oid: int,
    *,
    email: str,
    customer_id: int | None,
    total: float = 99.5,
    created: int = 0,
    updated: int | None = None,
    status: str = "pending",
    configurable: bool = False,
) -> dict[str, Any]:
    """A REST ``OrderInterface``; ``configurable`` adds a parent line and its child line."""
    guest = customer_id is None
    items: list[dict[str, Any]] = [
        {
            "item_id": oid * 10,
            "order_id": oid,
            "sku": "MUG-1",
            "name": "Coffee mug",
            "qty_ordered": 2,
            "price": total / 2,
            "row_total": total,
            "product_type": "simple",
        }
    ]
    if configurable:
        items = [
            {
                "item_id": oid * 10 + 1,
                "order_id": oid,
                "sku": "MH01-XS-Black",
                "name": "Chaz Kangeroo Hoodie",
                "qty_ordered": 1,
                "price": 52,
                "row_total": 52,
                "product_type": "configurable",
            },
            {
                "item_id": oid * 10 + 2,
                "order_id": oid,
                "parent_item_id": oid * 10 + 1,
                "sku": "MH01-XS-Black",
                "name": "Chaz Kangeroo Hoodie-XS-Black",
                "qty_ordered": 1,
                "price": 0,
                "row_total": 0,
                "product_type": "simple",
            },
            *items,
        ]
    data: dict[str, Any] = {
        "entity_id": oid,
        "increment_id": f"0000{oid:05d}",
        "state": "new",
        "status": status,
        "customer_email": email,
        "customer_firstname": "Guest" if guest else f"First{customer_id}",
        "customer_lastname": "Shopper" if guest else f"Last{customer_id}",
        "customer_is_guest": 1 if guest else 0,
        "grand_total": total,
        "base_grand_total": total,
        "order_currency_code": "EUR",
        "created_at": stamp(created),
        "updated_at": stamp(created if updated is None else updated),
        "items": items,
        "billing_address": {"email": email, "city": "Utrecht", "country_id": "NL"},
        "payment": {"method": "checkmo"},
    }
    if not guest:
        data["customer_id"] = customer_id
    return data


class MagentoStandIn(StandIn):
    """The shop's REST API, with an integration's four credentials (see the module docstring)."""

    def __init__(
        self,
        token: str = "magento-token",
        *,
        token_secret: str = "magento-token-secret",
        consumer_key: str = "magento-consumer-key",
        consumer_secret: str = "magento-consumer-secret",
        bearer_enabled: bool = True,
    ) -> None:
        super().__init__()
        self.token = token
        self.token_secret = token_secret
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.bearer_enabled = bearer_enabled
        self.customers: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self._index: dict[str, list[tuple[str, int]]] = {}
        self.oauth_verified = 0  # requests whose OAuth 1.0a signature checked out

    def put_customers(self, *records: dict[str, Any]) -> None:
        for r in records:
            self.customers[int(r["id"])] = r
        self._index.pop("customers", None)

    def put_orders(self, *records: dict[str, Any]) -> None:
        for r in records:
            self.orders[int(r["entity_id"])] = r
        self._index.pop("orders", None)

    def handle(self, req: Request) -> Answer:
        refused = self._authenticate(req)
        if refused is not None:
            return refused
        if req.method == "GET" and req.path == "/rest/V1/customers/search":
            return self._search(req, "customers", self.customers, "id")
        if req.method == "GET" and req.path == "/rest/V1/orders":
            return self._search(req, "orders", self.orders, "entity_id")
        return magento_answer(404, {"message": "Request does not match any route."})

    # -- authentication ------------------------------------------------------------------

    def _authenticate(self, req: Request) -> Answer | None:
        header = req.header("Authorization") or ""
        if header.startswith("OAuth "):
            return self._oauth(req, header)
        if header == f"Bearer {self.token}" and self.bearer_enabled:
            return None
        return magento_answer(401, NOT_AUTHORIZED)  # a guest, as far as Magento can tell

    def _oauth(self, req: Request, header: str) -> Answer | None:
        """Magento's ``Oauth::validateAccessTokenRequest``, in its order of checks."""
        params = dict(
            oauth_signature.collect_parameters(
                headers={"Authorization": header}, exclude_oauth_signature=False
            )
        )
        for name in OAUTH_REQUIRED:
            if name not in params:
                return magento_answer(
                    400,
                    {
                        "message": '"%fieldName" is required. Enter and try again.',
                        "parameters": {"fieldName": name},
                    },
                )
        method = params["oauth_signature_method"]
        if method != "HMAC-SHA256":
            return magento_answer(
                400, {"message": "Signature method %1 is not supported", "parameters": [method]}
            )
        if not hmac.compare_digest(params["oauth_consumer_key"], self.consumer_key):
            return magento_answer(
                401, {"message": "A consumer having the specified key does not exist"}
            )
        invalid = magento_answer(
            401, {"message": "The signature is invalid. Verify and try again."}
        )
        if not hmac.compare_digest(params["oauth_token"], self.token):
            return invalid
        query = urlencode([(k, v) for k, values in req.query.items() for v in values])
        collected = oauth_signature.collect_parameters(
            uri_query=query, headers={"Authorization": header}, exclude_oauth_signature=True
        )
        uri = f"http://{req.header('Host')}{req.path}"
        base = oauth_signature.signature_base_string(
            req.method,
            oauth_signature.base_string_uri(uri),
            oauth_signature.normalize_parameters(collected),
        )
        secrets = SimpleNamespace(
            client_secret=self.consumer_secret, resource_owner_secret=self.token_secret
        )
        expected = oauth_signature.sign_hmac_sha256_with_client(base, secrets)
        if not hmac.compare_digest(expected, params["oauth_signature"]):
            return invalid
        self.oauth_verified += 1
        return None

    # -- search --------------------------------------------------------------------------

    def _search(self, req: Request, kind: str, table: dict[int, Any], key: str) -> Answer:
        if not any(k.startswith("searchCriteria") for k in req.query):
            return magento_answer(
                400,
                {
                    "message": '"%fieldName" is required. Enter and try again.',
                    "parameters": {"fieldName": "searchCriteria"},
                },
            )
        filters: dict[tuple[int, int], dict[str, str]] = {}
        sorts: dict[int, dict[str, str]] = {}
        for name, values in req.query.items():
            if m := _CRIT.match(name):
                filters.setdefault((int(m[1]), int(m[2])), {})[m[3]] = values[0]
            elif m := _SORT.match(name):
                sorts.setdefault(int(m[1]), {})[m[2]] = values[0]
        size = int(req.arg("searchCriteria[pageSize]", "20") or 20)
        page = int(req.arg("searchCriteria[currentPage]", "1") or 1)
        rows = self._rows(kind, table, filters)
        if sorts and sorts[0].get("field") == "updated_at":
            if (sorts[0].get("direction") or "ASC").upper() == "DESC":
                rows = rows[::-1]
        total = len(rows)
        last_page = max((total + size - 1) // size, 1)
        page = min(page, last_page)  # Magento's own behaviour past the end
        items = [table[i] for _, i in rows[(page - 1) * size : page * size]]
        criteria = {
            "filter_groups": [
                {"filters": [f for (g2, _), f in sorted(filters.items()) if g2 == g]}
                for g in sorted({g for g, _ in filters})
            ],
            "page_size": size,
            "current_page": page,
        }
        return magento_answer(
            200, {"items": items, "search_criteria": criteria, "total_count": total}
        )

    def _rows(
        self, kind: str, table: dict[int, Any], filters: dict[tuple[int, int], dict[str, str]]
    ) -> list[tuple[str, int]]:
        index = self._index.get(kind)
        if index is None:
            index = sorted((r["updated_at"], i) for i, r in table.items())
            self._index[kind] = index
        rows = index
        for f in filters.values():
            if f.get("field") != "updated_at":
                raise ValueError(f"stand-in filters only on updated_at, not {f.get('field')}")
            value, cond = f.get("value", ""), f.get("condition_type", "eq")
            if cond == "gteq":
                rows = rows[bisect.bisect_left(rows, (value, -1)) :]
            elif cond == "gt":
                rows = rows[bisect.bisect_right(rows, (value, 1 << 62)) :]
            elif cond == "lteq":
                rows = rows[: bisect.bisect_right(rows, (value, 1 << 62))]
            else:
                rows = [r for r in rows if r[0] == value]
        return rows


class AdobeWebhooks:
    """The shop's webhook sender: a key pair (Admin > Adobe Services > Webhooks) and its headers.

    ``extra_headers`` are the hook's configured ``<headers>`` (the hub's bearer token).
    """

    def __init__(self, extra_headers: dict[str, str] | None = None) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.extra_headers = dict(extra_headers or {})

    @property
    def public_key(self) -> str:
        """The PEM public key, as the Admin shows it after "Regenerate key pair"."""
        return public_pem(self.private_key)

    def delivery(self, payload: Any) -> tuple[bytes, dict[str, str]]:
        """The body (PHP JSON; bytes are sent as they are) and the headers of one delivery."""
        body = payload if isinstance(payload, bytes) else php_json(payload)
        headers = {
            "Content-Type": "application/json",
            "x-adobe-commerce-request-id": str(uuid.uuid4()),
            SIGNATURE_HEADER: sign_body(self.private_key, body),
            **self.extra_headers,
        }
        return body, headers
