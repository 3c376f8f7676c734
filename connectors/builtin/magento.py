"""Magento 2 / Adobe Commerce: customers, orders and newsletter consent, pulled or pushed.

Customers become ``profile.upserted`` facts (external id ``magento: <id>``); orders become an
``order.placed`` fact once per order and an ``order.updated`` fact per later change; newsletter
subscriber saves become ``profile.upserted`` facts that state consent. A guest order carries
only the email, so it finds or makes the profile by email.

**Pull** uses ``/rest/V1/customers/search`` and ``/rest/V1/orders`` with ``searchCriteria`` on
``updated_at`` (ascending). Paging is by key, not offset: each request asks for ``updated_at >=
<last seen>`` again, so a record changed during a run moves behind the cursor instead of
shifting an unread one onto a page already read. Records at the boundary are read twice and
become duplicate facts (their ``source_id`` holds ``updated_at``). Requests are authenticated
as ``auth`` says: ``oauth1`` signs each with OAuth 1.0a HMAC-SHA256 (key = consumer secret ``&``
access token secret), which every Magento 2.4 accepts; ``bearer`` sends the integration access
token as a bearer token, which Magento 2.4.4 and later refuse unless the admin setting *Allow
OAuth Access Tokens to be used as standalone Bearer tokens* is on (Adobe Commerce web API guide,
``gs-authentication-token.md``); the refusal is reported with that hint.

**Push** takes Adobe Commerce webhooks (module ``magento/module-adobe-commerce-webhooks``
1.17.1; see ``tests/stand_ins/vendor/README.md`` section 1) in every shape the module sends:

- observer webhooks (``observer.customer_save_after`` …): ``{"subject": [], "eventName":
  "customer_save_after", "data": {"data_object": {…}, "customer": {…}}}`` with the *bare*
  Magento event name and the model's ``getData()`` under its event object name;
- plugin webhooks (``plugin.magento.sales.api.order_management.place``, SaaS
  ``plugin.sales.api.order_management.place``): ``{"subject": [], "order": {…}}`` without
  ``eventName`` (``after`` plugins add ``result``);
- hooks with ``fields`` configured, which send only the configured paths in any shape. Such a
  body is recognised by its ``order``/``customer``/``subscriber`` object (top level or under
  ``data``); when it has none (fields named flat, ``{"email": …, "entity_id": …}``), the hook's
  URL must say which hook it is: ``…/webhook?hook=observer.customer_save_after`` (any webhook
  method name of :data:`OBSERVERS` or :data:`PLUGINS`, with or without its prefix). The query
  parameter is chosen over an instance setting because one instance serves several hooks.

The older ``"eventName": "observer.customer_save_after"`` form (no Magento version sends it) is
still read: the prefix is dropped, nothing else differs. Every delivery is checked with the
``x-adobe-commerce-webhook-signature`` header (RSA-SHA256 by the key pair of Stores >
Configuration > Adobe Services > Webhooks over the base64 of the raw body, ACW
``DigitalSignature.php``) and/or a bearer token set as a hook header.

Adobe Commerce reads only a 200 whose JSON has an ``op`` (ACW ``ResponseOperationFactory``), and
a *required* hook (the default) that gets anything else aborts the shop's own save or order. So
the answer is ``{"op": "success"}`` with 200 once the facts are stored, and also for a signed
delivery the hub refuses (kept as a refused delivery, in the log and the instance's last error):
the hub must never block a checkout. An unsigned or forged request stays 401.

Consent (M2 ``Newsletter/Model/Subscriber.php``, ``Newsletter/etc/extension_attributes.xml``):

- ``newsletter_subscriber_save_after``: ``subscriber_status`` 1 (subscribed) states
  ``subscribed``, 3 (unsubscribed) ``unsubscribed``; 2 (not active: confirmation pending) and 4
  (unconfirmed) state nothing, and such a delivery gives no fact. The payload is the model's
  data only (the model's ``_isStatusChanged`` flag and original data are not in it), but
  ``Subscriber::beforeSave`` writes ``change_status_at`` (UTC) exactly when the status changes
  in that save; the hook runs inside the same save, so a ``change_status_at`` within
  :data:`OPT_IN_WINDOW` of receipt means the status became 1 just now: an **explicit** opt-in
  (it may re-subscribe a profile that unsubscribed). An older one is a plain statement of the
  current flag.
- ``extension_attributes.is_subscribed`` (REST customer reads, and any payload carrying it):
  ``true`` states ``subscribed``, not explicit (it is the current flag, not a change). ``false``
  states **nothing**: Magento reports false for a customer who never subscribed, one whose
  subscription awaits confirmation and one who unsubscribed alike, so it is no opt-out; an
  unsubscribe reaches the hub through ``newsletter_subscriber_save_after`` (status 3).
- A customer or order save without either states nothing.

Order lines: a configurable (or bundle) product is a parent line plus child lines with
``parent_item_id`` (or, before the order is saved, ``parent_item``) set; only lines without a
parent are order lines. Totals are the order's own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import (
    ConfigField,
    Connector,
    ContractExample,
    Delivered,
    FieldKind,
    Page,
    WebhookAnswer,
    WebhookRequest,
)
from connectors.builtin._util import as_dict, as_list, compact, email_or_none, make_fact, parse_time
from connectors.builtin._util import require as need
from connectors.exceptions import (
    ConfigProblem,
    NotSupported,
    PayloadInvalid,
    RemoteRejected,
    SignatureInvalid,
)
from connectors.http import RemoteClient
from hub.facts import ConsentIn, FactIn

SIGNATURE_HEADER = "x-adobe-commerce-webhook-signature"
GENDERS = {1: "male", 2: "female", 3: "not specified"}
# Observer events (bare Magento names, as ``eventName`` carries them) -> (kind, data key).
OBSERVERS: dict[str, tuple[str, str]] = {
    "customer_save_after": ("customer", "customer"),
    "customer_save_commit_after": ("customer", "customer"),
    "customer_register_success": ("customer", "customer"),
    "sales_order_save_after": ("order", "order"),
    "sales_order_save_commit_after": ("order", "order"),
    "sales_order_place_after": ("order", "order"),
    "checkout_submit_all_after": ("order", "order"),
    "newsletter_subscriber_save_after": ("subscriber", "subscriber"),
    "newsletter_subscriber_save_commit_after": ("subscriber", "subscriber"),
}
# Plugin webhooks (without ``plugin.`` / ``plugin.magento.``) -> (kind, argument name).
PLUGINS: dict[str, tuple[str, str]] = {
    "sales.api.order_management.place": ("order", "order"),
    "sales.api.order_repository.save": ("order", "entity"),
    "customer.api.customer_repository.save": ("customer", "customer"),
}
# How recent ``change_status_at`` must be for a subscriber save to count as an opt-in just now.
OPT_IN_WINDOW = timedelta(minutes=10)
SUBSCRIBER_STATUS = {1: "subscribed", 2: "not active", 3: "unsubscribed", 4: "unconfirmed"}
ENDPOINTS = {"customers": "rest/V1/customers/search", "orders": "rest/V1/orders"}
AUTH = ("bearer", "oauth1")
OAUTH_FIELDS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
BEARER_HINT = (
    "Magento did not take the access token as a bearer token: either it is wrong or revoked, "
    "or (Magento 2.4.4 and later) Stores > Configuration > Services > OAuth > Consumer "
    "Settings > 'Allow OAuth Access Tokens to be used as standalone Bearer tokens' is No, the "
    "default. Set auth to oauth1 with the integration's consumer key and secret and access "
    "token and secret (recommended), or turn that setting on"
)
OAUTH_HINT = (
    "Check the integration's four credentials, that the integration is active, and that its "
    "API resources include customers and orders"
)


class MagentoConnector(Connector):
    """Magento 2 / Adobe Commerce shop."""

    name = "magento"
    title = "Magento 2 / Adobe Commerce"
    streams = ("customers", "orders")
    config_fields = (
        ConfigField("base_url", FieldKind.URL, required=True, help="shop URL, without /rest"),
        ConfigField(
            "auth",
            default="bearer",
            choices=AUTH,
            help="how pulls authenticate: oauth1 (signed with the integration's four "
            "credentials; works on every 2.4) or bearer (the access token alone; 2.4.4+ only "
            "with 'Allow OAuth Access Tokens to be used as standalone Bearer tokens')",
        ),
        ConfigField(
            "access_token",
            secret=True,
            help="the integration's access token (bearer token, or the OAuth token)",
        ),
        ConfigField(
            "access_token_secret", secret=True, help="the integration's access token secret"
        ),
        ConfigField("consumer_key", secret=True, help="the integration's consumer key"),
        ConfigField("consumer_secret", secret=True, help="the integration's consumer secret"),
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
        """A PEM RSA ``webhook_public_key``; ``auth: oauth1`` needs all four credentials."""
        problems: list[ConfigProblem] = []
        key = config.get("webhook_public_key")
        if key:
            try:
                _load_public_key(key)
            except ValueError:
                problems.append(ConfigProblem("webhook_public_key", "is not a PEM RSA public key"))
        if config.get("auth") == "oauth1":
            problems.extend(
                ConfigProblem(name, "is required when auth is oauth1")
                for name in OAUTH_FIELDS
                if not config.get(name)
            )
        return problems

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
        """The facts of one delivery, whatever its shape (observer, plugin, reshaped by fields).

        A customer gives a profile fact, an order its order facts (:meth:`order_facts`), a
        newsletter subscriber a consent statement (:meth:`subscriber_facts`, none for status 2
        and 4).
        """
        body = as_dict(request.json(), "")
        kind, record, path = locate(body, request.query.get("hook"))
        if kind == "customer":
            return [self.customer_fact(record, path)]
        if kind == "order":
            return self.order_facts(record, path)
        return self.subscriber_facts(record, path, received=datetime.now(UTC))

    def answer(self, request: WebhookRequest, delivered: list[Delivered]) -> WebhookAnswer:
        """``{"op": "success"}`` with 200: the only answer Adobe Commerce reads as success."""
        return WebhookAnswer(200, {"op": "success"})

    def answer_invalid(self, request: WebhookRequest, error: PayloadInvalid) -> WebhookAnswer:
        """``{"op": "success"}`` with 200 too: a refusal must not abort the shop's checkout.

        The hub keeps the delivery and records the refusal; ``exception`` or a non-200 would make
        a required hook abort the customer's save or order.
        """
        return WebhookAnswer(200, {"op": "success"})

    # -- pull ----------------------------------------------------------------------------

    def client(self) -> RemoteClient:
        """A REST client: OAuth 1.0a HMAC-SHA256 signing, or the access token as bearer token."""
        client = RemoteClient(
            self.config["base_url"],
            timeout=self.config["timeout_seconds"],
            max_inline_wait=self.config["max_inline_wait"],
        )
        if self.config["auth"] == "oauth1":
            from requests_oauthlib import OAuth1

            client.session.auth = OAuth1(
                self.config["consumer_key"],
                self.config["consumer_secret"],
                self.config["access_token"],
                self.config["access_token_secret"],
                signature_method="HMAC-SHA256",  # Magento 2.4 supports no other
            )
        elif self.config["access_token"]:
            client.session.headers["Authorization"] = f"Bearer {self.config['access_token']}"
        return client

    def get(self, client: RemoteClient, path: str, params: dict[str, Any]) -> Any:
        """GET ``path``; a 401 is reported with Magento's message and what to change."""
        try:
            return client.get_json(path, params=params)
        except RemoteRejected as exc:
            if exc.status != 401:
                raise
            label, said = _magento_message(str(exc))
            hint = OAUTH_HINT if self.config["auth"] == "oauth1" else BEARER_HINT
            raise RemoteRejected(f"{label}: {said}. {hint}", status=401) from None

    def pull(self, stream: str, cursor: str | None) -> Iterator[Page]:
        """Pages of customers or orders updated at or after ``cursor`` (their ``updated_at``)."""
        if stream not in ENDPOINTS:
            raise NotSupported(f"magento has no stream {stream!r} (streams: customers, orders)")
        client, size = self.client(), self.config["page_size"]
        since, page_no = cursor, 1
        while True:
            body = self.get(client, ENDPOINTS[stream], search_criteria(since, page_no, size))
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
        """Count the shop's customers with the configured credentials."""
        body = self.get(self.client(), ENDPOINTS["customers"], search_criteria(None, 1, 1))
        return f"connected to {self.config['base_url']}: {body.get('total_count', 0)} customers"

    # -- mapping -------------------------------------------------------------------------

    def customer_fact(self, c: dict[str, Any], path: str) -> FactIn:
        """A ``profile.upserted`` fact from a customer record at ``path`` (for errors).

        The record is a REST ``CustomerInterface`` (``id``) or the model data of an observer
        payload (``entity_id``, every value a string). Without ``updated_at`` (a hook whose
        ``fields`` leave it out) the record's content keys the fact, so a replay is a duplicate.
        """
        cid = c.get("id", c.get("entity_id"))
        if cid in (None, ""):
            raise PayloadInvalid(_at(path, "id"), "is required")
        email = need(c, "email", path)
        updated = c.get("updated_at") or c.get("created_at")
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
        profile: dict[str, Any] = {
            "email": email,
            "external_ids": {"magento": str(cid)},
            "fields": fields,
        }
        consent = _is_subscribed_consent(c, str(cid))
        if consent is not None:
            profile["consent"] = consent
        version = str(updated) if updated else f"sha256:{_digest(c)}"
        return make_fact(
            {"profile.email": _at(path, "email"), "occurred_at": _at(path, "updated_at")},
            type="profile.upserted",
            source=self.name,
            source_id=f"{self.instance}:customer:{cid}:{version}",
            occurred_at=parse_time(updated, _at(path, "updated_at")) if updated else None,
            profile=profile,
            data={"instance": self.instance, "customer_id": str(cid)},
        )

    def order_facts(self, o: dict[str, Any], path: str) -> list[FactIn]:
        """``order.placed`` for an order, and ``order.updated`` as well if it changed since.

        A guest order names its profile by email only; a customer's order also by its customer
        id. An order not saved yet (a ``before`` plugin on ``place``) has no ``entity_id`` nor
        ``created_at``: its increment id keys it and the hub's receipt time dates it.
        """
        oid = o.get("entity_id")
        if oid in (None, ""):
            increment = o.get("increment_id")
            if increment in (None, ""):
                raise PayloadInvalid(_at(path, "entity_id"), "is required")
            key = f"increment:{increment}"
        else:
            key = str(oid)
        email = need(o, "customer_email", path)
        created = o.get("created_at")
        updated = o.get("updated_at") or created
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
            raise PayloadInvalid(_at(path, "grand_total"), "expected a number") from None
        data = {
            "instance": self.instance,
            "order_id": str(o.get("increment_id") or oid),
            "entity_id": None if oid in (None, "") else str(oid),
            "status": o.get("status"),
            "state": o.get("state"),
            "total": total,
            "currency": o.get("order_currency_code"),
            "guest": guest,
            "items": [_item(i) for i in order_lines(o.get("items"), _at(path, "items"))],
        }
        names = {"profile.email": _at(path, "customer_email")}
        facts = [
            make_fact(
                names,
                type="order.placed",
                source=self.name,
                source_id=f"{self.instance}:order:{key}:placed",
                occurred_at=parse_time(created, _at(path, "created_at")) if created else None,
                profile=profile,
                data=data,
            )
        ]
        if created and updated and str(updated) != str(created):
            facts.append(
                make_fact(
                    names,
                    type="order.updated",
                    source=self.name,
                    source_id=f"{self.instance}:order:{key}:{updated}",
                    occurred_at=parse_time(updated, _at(path, "updated_at")),
                    profile=profile,
                    data=data,
                )
            )
        return facts

    def subscriber_facts(self, s: dict[str, Any], path: str, *, received: datetime) -> list[FactIn]:
        """A consent statement from a newsletter subscriber's model data (``[]`` for 2 and 4).

        ``received`` is when the hub got the delivery: a ``change_status_at`` close to it means
        the status changed in the save that sent it (see the module docstring).
        """
        status = _int(s.get("subscriber_status"))
        if status not in SUBSCRIBER_STATUS:
            raise PayloadInvalid(_at(path, "subscriber_status"), "expected 1, 2, 3 or 4")
        if status not in (1, 3):
            return []  # pending confirmation or unconfirmed: no consent either way
        email = need(s, "subscriber_email", path)
        sid = need(s, "subscriber_id", path)
        changed_text = s.get("change_status_at")
        changed = parse_time(changed_text, _at(path, "change_status_at")) if changed_text else None
        just_now = changed is not None and abs(received - changed) <= OPT_IN_WINDOW
        stated = "subscribed" if status == 1 else "unsubscribed"
        customer_id = str(s.get("customer_id") or "")
        evidence = compact(
            {
                "subscriber_id": str(sid),
                "subscriber_status": status,
                "change_status_at": changed_text,
                "store_id": s.get("store_id"),
                "customer_id": customer_id if customer_id not in ("", "0") else None,
            }
        )
        profile: dict[str, Any] = {
            "email": email,
            "consent": {
                "status": stated,
                "explicit": stated == "subscribed" and just_now,
                "proof": f"magento newsletter_subscriber.subscriber_status={status} ({stated})",
                "at": changed,
                "evidence": evidence,
            },
        }
        if customer_id not in ("", "0"):  # a guest subscriber has customer_id 0
            profile["external_ids"] = {"magento": customer_id}
        return [
            make_fact(
                {"profile.email": _at(path, "subscriber_email")},
                type="profile.upserted",
                source=self.name,
                source_id=f"{self.instance}:subscriber:{sid}:{status}:{changed_text or ''}",
                occurred_at=changed,
                profile=profile,
                data={
                    "instance": self.instance,
                    "subscriber_id": str(sid),
                    "subscriber_status": status,
                },
            )
        ]

    @classmethod
    def contract_example(cls) -> ContractExample:
        """Webhooks signed by a key pair made for the run, a no-fact delivery, malformed bodies."""
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

        customer = (
            b'{"subject":[],"eventName":"customer_save_after","data":{"customer":{"entity_id":'
            b'"7","email":"ann@example.com","firstname":"Ann","updated_at":"2026-01-02 03:04:05"'
            b"}}}"
        )
        placed = (
            b'{"subject":[],"order":{"entity_id":"9","increment_id":"000000009","customer_email":'
            b'"ann@example.com","customer_id":"7","grand_total":12.5,"created_at":'
            b'"2026-01-02 03:04:05","items":[]}}'
        )
        pending = (
            b'{"subject":[],"eventName":"newsletter_subscriber_save_after","data":{"subscriber":'
            b'{"subscriber_id":"3","subscriber_email":"ann@example.com","subscriber_status":2}}}'
        )
        return ContractExample(
            config=config,
            sign=sign,
            webhooks=[sign(customer), sign(placed)],
            empty=[sign(pending)],
            malformed=[
                (b"{not json", "application/json"),
                (b'{"eventName":"customer_save_after","data":{}}', "application/json"),
                (b'{"postcode":"90000","result":[]}', "application/json"),
            ],
        )


def locate(body: dict[str, Any], hook: str | None) -> tuple[str, dict[str, Any], str]:
    """The kind of record a webhook body carries, the record, and its path (for errors).

    ``eventName`` (observer webhooks) names the event; otherwise ``hook`` (the URL's ``?hook=``)
    does; otherwise the body's shape: an ``order``, ``customer`` or ``subscriber`` object at the
    top (plugin webhooks) or under ``data`` (observer payloads reshaped by ``fields``).
    """
    event = body.get("eventName")
    if event is not None:
        name = str(event).removeprefix("observer.")
        if name not in OBSERVERS:
            raise PayloadInvalid(
                "eventName", f"{event!r} is not an event the hub takes ({', '.join(OBSERVERS)})"
            )
        kind, key = OBSERVERS[name]
        return (kind, *_record(body, key, flat=False))
    if hook:
        kind, key = _hook(hook)
        return (kind, *_record(body, key, flat=True))
    for key, kind in (("order", "order"), ("customer", "customer"), ("subscriber", "subscriber")):
        if isinstance(body.get(key), dict):
            return kind, *_record(body, key, flat=False)
        data = body.get("data")
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            return kind, *_record(body, key, flat=False)
    raise PayloadInvalid(
        "eventName",
        "cannot tell which hook sent this body (no eventName, and no order, customer or "
        "subscriber object): add ?hook=<webhook method, such as observer.customer_save_after> "
        "to the hook's URL",
    )


def _hook(hook: str) -> tuple[str, str]:
    name = hook.strip()
    if name.startswith("plugin."):
        short = name.removeprefix("plugin.").removeprefix("magento.")
        if short in PLUGINS:
            return PLUGINS[short]
    elif name.removeprefix("observer.") in OBSERVERS:
        return OBSERVERS[name.removeprefix("observer.")]
    known = [f"observer.{n}" for n in OBSERVERS] + [f"plugin.magento.{n}" for n in PLUGINS]
    raise PayloadInvalid("hook", f"{hook!r} is not a hook the hub takes ({', '.join(known)})")


def _record(body: dict[str, Any], key: str, *, flat: bool) -> tuple[dict[str, Any], str]:
    """The record under ``key``: ``data.<key>``, ``data.data_object``, ``<key>``, ``result``.

    ``flat``: a body whose ``fields`` name the record's own keys is the record itself.
    """
    data = body.get("data")
    if isinstance(data, dict):
        for name in (key, "data_object"):
            if isinstance(data.get(name), dict):
                return data[name], f"data.{name}"
    if isinstance(body.get(key), dict):
        return body[key], key
    result = body.get("result")
    if isinstance(result, dict) and (result.get("entity_id") or result.get("id")):
        return result, "result"  # an ``after`` plugin's return value: the saved record
    if flat and not isinstance(data, dict):
        return body, ""
    raise PayloadInvalid(f"data.{key}", "is required")


def order_lines(items: Any, path: str) -> list[dict[str, Any]]:
    """The order's own lines: without the child lines of configurable and bundle products.

    ``items`` is a list, or an object keyed by item id (PHP's ``json_encode`` of an order
    loaded from the database, whose items array is keyed so).
    """
    if items in (None, ""):
        return []
    if isinstance(items, dict):
        items = list(items.values())
    lines = as_list(items, path)
    return [
        i
        for i in lines
        if isinstance(i, dict)
        and i.get("parent_item_id") in (None, "", 0, "0")
        and not i.get("parent_item")
    ]


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


def _is_subscribed_consent(c: dict[str, Any], cid: str) -> ConsentIn | None:
    """``extension_attributes.is_subscribed`` true as a plain ``subscribed``; else nothing."""
    ext = c.get("extension_attributes")
    if not isinstance(ext, dict) or ext.get("is_subscribed") not in (True, 1, "1", "true"):
        return None
    return ConsentIn(
        status="subscribed",
        proof="magento customer extension_attributes.is_subscribed=true "
        "(newsletter_subscriber.subscriber_status=1)",
        evidence={"customer_id": cid},
    )


def _magento_message(text: str) -> tuple[str, str]:
    """A ``RemoteRejected`` text split into its request line and Magento's message.

    The message has its ``%name`` / ``%1`` placeholders filled in from ``parameters``.
    """
    start = text.find("{")
    label = text[:start].strip() if start >= 0 else text
    try:
        said = json.loads(text[start:]) if start >= 0 else None
    except ValueError:
        said = None
    if not isinstance(said, dict) or not isinstance(said.get("message"), str):
        return label, "Magento refused the credentials"
    message: str = said["message"]
    params = said.get("parameters")
    if isinstance(params, dict):
        for name, value in params.items():
            message = message.replace(f"%{name}", str(value))
    elif isinstance(params, list):
        for n, value in enumerate(params, 1):
            message = message.replace(f"%{n}", str(value))
    return label, message.rstrip(".")


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


def _at(path: str, key: str) -> str:
    """``path.key``, or ``key`` for a record at the top of the body."""
    return f"{path}.{key}" if path else key


def _digest(record: dict[str, Any]) -> str:
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


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
            "product_type": i.get("product_type"),
        }
    )


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
