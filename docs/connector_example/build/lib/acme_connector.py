"""Acme Events: attendee registrations pushed by webhook, and pulled from its REST API."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

from connectors import (
    ConfigField,
    Connector,
    ContractExample,
    FieldKind,
    Page,
    PayloadInvalid,
    SignatureInvalid,
    WebhookRequest,
)
from connectors.http import RemoteClient
from hub.facts import FactIn


class AcmeConnector(Connector):
    """Acme Events account."""

    name = "acme"
    title = "Acme Events"
    streams = ("registrations",)
    config_fields = (
        ConfigField("api_url", FieldKind.URL, default="https://api.acme-events.example"),
        ConfigField("api_key", secret=True, help="for pulls"),
        ConfigField("signing_secret", secret=True, required=True, help="for webhooks"),
    )

    def verify(self, request: WebhookRequest) -> None:
        given = request.header("X-Acme-Signature") or ""
        digest = hmac.new(
            self.config["signing_secret"].encode(), request.body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(given.encode(), f"sha256={digest}".encode()):
            raise SignatureInvalid("X-Acme-Signature does not match the body")

    def parse(self, request: WebhookRequest) -> list[FactIn]:
        body = request.json()
        if not isinstance(body, dict) or not body.get("id"):
            raise PayloadInvalid("id", "is required")
        return [self.registration(body)]

    def pull(self, stream: str, cursor: str | None) -> Iterator[Page]:
        client = RemoteClient(self.config["api_url"])
        client.session.headers["Authorization"] = f"Bearer {self.config['api_key']}"
        url: str | None = "v1/registrations"
        params = {"since": cursor} if cursor else None
        while url:
            body = client.get_json(url, params=params)
            items = body.get("data") or []
            newest = max((r["updated"] for r in items), default=None)
            yield Page([self.registration(r) for r in items], newest)
            url, params = body.get("next"), None

    def test_connection(self) -> str:
        RemoteClient(self.config["api_url"]).get_json("v1/ping")
        return "Acme Events answers"

    def registration(self, r: dict) -> FactIn:
        attendee = r.get("attendee") or {}
        if not attendee.get("email"):
            raise PayloadInvalid("attendee.email", "is required")
        return FactIn(
            type="event.registered",
            source=self.name,
            source_id=f"{self.instance}:{r['id']}",
            profile={"email": attendee["email"], "fields": {"first_name": attendee.get("name")}},
            data={"event": (r.get("event") or {}).get("name"), "registration": r["id"]},
        )

    @classmethod
    def contract_example(cls) -> ContractExample:
        config = {"signing_secret": "example-secret", "api_key": "example-key"}

        def sign(body: bytes, content_type: str = "application/json") -> WebhookRequest:
            digest = hmac.new(b"example-secret", body, hashlib.sha256).hexdigest()
            headers = {"Content-Type": content_type, "X-Acme-Signature": f"sha256={digest}"}
            return WebhookRequest(body, headers)

        body = b'{"id": "reg_1", "attendee": {"email": "ada@example.com"}, "event": {}}'
        return ContractExample(
            config=config,
            sign=sign,
            webhooks=[sign(body)],
            malformed=[(b'{"id": "reg_2", "attendee": {}}', "application/json")],
        )
