"""Exact Online: accounts and contacts, by webhook notification or pulled over REST (OData).

A webhook body is ``{"Content": {"Topic", "ClientId", "Division", "Action", "Key",
"ExactOnlineEndpoint", "EventCreatedOn"}, "HashCode": "..."}``; the hash is the HMAC-SHA256 of
the ``Content`` JSON text exactly as sent (so it is cut out of the raw body, not re-serialized)
with the app's webhook secret, in upper-case hex. A notification names a record only: for
``Create``/``Update`` the record is fetched from ``crm/Accounts`` or ``crm/Contacts``; a
``Delete`` becomes a ``profile.deleted`` fact.

OAuth2: access tokens live 10 minutes and every refresh returns a new refresh token, the old one
being dead from then on. The new pair is written through the :class:`StateStore` (encrypted,
under a lock, committed) before the access token is used, so a crash cannot lose it.
Rate limits (60 requests a minute per division) are honoured from the
``X-RateLimit-Minutely-*`` headers and 429 answers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from connectors.base import ConfigField, Connector, ContractExample, FieldKind, Page, WebhookRequest
from connectors.builtin._util import as_dict, as_list, compact, make_fact, parse_time
from connectors.builtin._util import require as need
from connectors.exceptions import (
    NotSupported,
    PayloadInvalid,
    RemoteRejected,
    RemoteUnavailable,
    SignatureInvalid,
)
from connectors.http import RemoteClient
from hub.facts import FactIn

TOPICS = {"Accounts": "crm/Accounts", "Contacts": "crm/Contacts"}
STREAMS = {"accounts": "Accounts", "contacts": "Contacts"}
SELECT = {
    "Accounts": "ID,Code,Name,Email,Status,IsMailing,Phone,City,Country,Modified",
    "Contacts": "ID,Account,Email,FirstName,LastName,Phone,IsMailingExcluded,Modified",
}
STATUS = {"C": "customer", "P": "prospect", "S": "suspect", "A": "none"}
_CONTENT_FIRST = re.compile(
    rb'^\s*\{\s*"Content"\s*:\s*(.*?)\s*,\s*"HashCode"\s*:\s*"([^"]*)"\s*\}\s*$', re.S
)
_HASH_FIRST = re.compile(
    rb'^\s*\{\s*"HashCode"\s*:\s*"([^"]*)"\s*,\s*"Content"\s*:\s*(.*?)\s*\}\s*$', re.S
)
TOKEN_MARGIN = 30  # refresh this many seconds before the access token expires


class ExactConnector(Connector):
    """Exact Online division."""

    name = "exact"
    title = "Exact Online"
    streams = ("accounts", "contacts")
    config_fields = (
        ConfigField("base_url", FieldKind.URL, default="https://start.exactonline.nl"),
        ConfigField("division", FieldKind.INTEGER, required=True, minimum=1),
        ConfigField("client_id", required=True),
        ConfigField("client_secret", secret=True, required=True),
        ConfigField(
            "refresh_token",
            secret=True,
            required=True,
            help="refresh token from the authorization; rotated tokens are kept by the hub",
        ),
        ConfigField("webhook_secret", secret=True, help="the app's webhook secret"),
        ConfigField("overlap_seconds", FieldKind.INTEGER, default=300, minimum=0),
        ConfigField("timeout_seconds", FieldKind.NUMBER, default=30.0, minimum=0.1),
        ConfigField("max_inline_wait", FieldKind.NUMBER, default=5.0, minimum=0),
    )

    _client: RemoteClient | None = None

    # -- push ----------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Check ``HashCode``, the HMAC-SHA256 of the raw ``Content`` text keyed by the secret."""
        secret = self.config["webhook_secret"]
        if not secret:
            raise SignatureInvalid("no webhook secret is configured for this instance")
        content, given = split_signed(request.body)
        if content is None or not given:
            raise SignatureInvalid("body has no Content and HashCode to check")
        expected = hmac.new(secret.encode(), content, hashlib.sha256).hexdigest().upper()
        if not hmac.compare_digest(expected.encode(), given.upper().encode()):
            raise SignatureInvalid("HashCode does not match the Content")

    def parse(self, request: WebhookRequest) -> list[FactIn]:
        """A notification's facts: a ``Delete`` as is, a create or update as the fetched record.

        A created or updated record is fetched from Exact Online, so this can raise
        :class:`RemoteUnavailable`. A notification for another division is refused; topics other
        than Accounts and Contacts give no facts.
        """
        body = as_dict(request.json(), "")
        content = as_dict(need(body, "Content", ""), "Content")
        topic = str(need(content, "Topic", "Content"))
        action = str(need(content, "Action", "Content"))
        key = str(need(content, "Key", "Content"))
        division = need(content, "Division", "Content")
        if str(division) != str(self.config["division"]):
            raise PayloadInvalid("Content.Division", f"{division} is not this instance's division")
        if topic not in TOPICS:
            return []  # a topic we do not map (Items, SalesOrders...): nothing to say
        if action == "Delete":
            when = content.get("EventCreatedOn")
            return [
                make_fact(
                    {"occurred_at": "Content.EventCreatedOn"},
                    type="profile.deleted",
                    source=self.name,
                    source_id=f"{self.instance}:{topic}:{key}:deleted:{when or ''}",
                    occurred_at=parse_time(when, "Content.EventCreatedOn") if when else None,
                    profile={"external_ids": {"exact": key.lower()}},
                    data={"instance": self.instance, "topic": topic, "key": key},
                )
            ]
        if action not in ("Create", "Update"):
            raise PayloadInvalid("Content.Action", f"{action!r} is not Create, Update or Delete")
        found = self._get(
            TOPICS[topic], {"$select": SELECT[topic], "$filter": f"ID eq guid'{key}'"}
        )
        records = as_list(as_dict(found.get("d") or {}, "d").get("results") or [], "d.results")
        return [self.record_fact(topic, as_dict(r, "d.results.0"), "d.results.0") for r in records]

    # -- pull ----------------------------------------------------------------------------

    def pull(self, stream: str, cursor: str | None) -> Iterator[Page]:
        """Pages of accounts or contacts modified since ``cursor``; only the last page moves it.

        Exact pages by ID, not by modification time, so the cursor is known once every page is read.
        """
        if stream not in STREAMS:
            raise NotSupported(f"exact has no stream {stream!r} (streams: accounts, contacts)")
        topic = STREAMS[stream]
        params: dict[str, str] | None = {"$select": SELECT[topic]}
        if cursor:
            params["$filter"] = f"Modified ge datetime'{cursor}'"  # type: ignore[index]
        url = TOPICS[topic]
        newest: datetime | None = None
        started: datetime | None = None
        while url:
            resp = self._request(url, params)
            started = started or _remote_now(resp.headers.get("Date"))
            d = as_dict(as_dict(resp.json(), "").get("d") or {}, "d")
            facts = []
            for n, r in enumerate(as_list(d.get("results") or [], "d.results")):
                fact = self.record_fact(topic, as_dict(r, f"d.results.{n}"), f"d.results.{n}")
                facts.append(fact)
                newest = max(newest, fact.occurred_at) if newest else fact.occurred_at  # type: ignore[type-var]
            url, params = d.get("__next") or "", None
            if url and not self._same_origin(url):
                raise RemoteRejected(f"__next points away from {self.config['base_url']}")
            if url:
                yield Page(facts, None)  # paging is by ID, not by Modified: no cursor yet
            else:
                yield Page(facts, self._cursor(cursor, newest, started))

    def _same_origin(self, url: str) -> bool:
        """Follow ``__next`` only to the configured host: it receives our bearer token."""
        ours, theirs = urlsplit(self.config["base_url"]), urlsplit(url)
        return (ours.scheme, ours.netloc) == (theirs.scheme, theirs.netloc)

    def _cursor(
        self, old: str | None, newest: datetime | None, started: datetime | None
    ) -> str | None:
        """Resume from the newest change seen, but never after this run began (less overlap).

        A record changed during the run may sit on a page already read.
        """
        if newest is None:
            return old
        limit = (started or datetime.now(UTC)) - timedelta(seconds=self.config["overlap_seconds"])
        point = min(newest, limit)
        new = point.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return max(old, new) if old else new

    def test_connection(self) -> str:
        """Read the signed-in user (``current/Me``), refreshing the access token if need be."""
        body = self._get("current/Me", {"$select": "CurrentDivision,FullName"}, division=False)
        results = (body.get("d") or {}).get("results") or [{}]
        return f"connected to Exact Online as {results[0].get('FullName', '?')}"

    # -- mapping -------------------------------------------------------------------------

    def record_fact(self, topic: str, r: dict[str, Any], path: str) -> FactIn:
        """A ``profile.upserted`` fact from an account or contact record (``topic``) at ``path``."""
        rid = str(need(r, "ID", path)).lower()
        modified = parse_time(need(r, "Modified", path), f"{path}.Modified")
        if topic == "Accounts":
            status = r.get("Status")
            fields = compact(
                {
                    "company": r.get("Name"),
                    "exact_code": (r.get("Code") or "").strip() or None,
                    "exact_status": STATUS.get(str(status), str(status).lower())
                    if status
                    else None,
                    "exact_is_mailing": None
                    if r.get("IsMailing") is None
                    else bool(r.get("IsMailing")),
                    "phone": r.get("Phone"),
                    "city": r.get("City"),
                    "country": r.get("Country"),
                }
            )
        else:
            excluded = r.get("IsMailingExcluded")
            fields = compact(
                {
                    "first_name": r.get("FirstName"),
                    "last_name": r.get("LastName"),
                    "phone": r.get("Phone"),
                    "exact_account": (r.get("Account") or "").lower() or None,
                    "exact_is_mailing": None if excluded is None else not excluded,
                }
            )
        profile: dict[str, Any] = {"external_ids": {"exact": rid}, "fields": fields}
        if r.get("Email"):
            profile["email"] = r["Email"]
        return make_fact(
            {"profile.email": f"{path}.Email"},
            type="profile.upserted",
            source=self.name,
            source_id=f"{self.instance}:{topic}:{rid}:{int(modified.timestamp() * 1000)}",
            occurred_at=modified,
            profile=profile,
            data={"instance": self.instance, "topic": topic, "id": rid},
        )

    # -- REST and OAuth ------------------------------------------------------------------

    def client(self) -> RemoteClient:
        """The instance's one client: the rate limit it tracks must hold across requests."""
        if self._client is None:
            self._client = RemoteClient(
                self.config["base_url"],
                timeout=self.config["timeout_seconds"],
                max_inline_wait=self.config["max_inline_wait"],
                limit_headers=("X-RateLimit-Minutely-Remaining", "X-RateLimit-Minutely-Reset"),
            )
            self._client.session.headers["Accept"] = "application/json"
        return self._client

    def _get(self, path: str, params: dict[str, str], *, division: bool = True) -> Any:
        resp = self._request(path, params, division=division)
        try:
            return as_dict(resp.json(), "")
        except ValueError:
            raise RemoteRejected(f"{path}: answer is not JSON") from None

    def _request(self, path: str, params: dict[str, str] | None, *, division: bool = True) -> Any:
        if not path.startswith("http"):
            prefix = f"api/v1/{self.config['division']}/" if division else "api/v1/"
            path = prefix + path
        token = self.access_token()
        try:
            return self.client().request(
                "GET", path, params=params, headers={"Authorization": f"Bearer {token}"}
            )
        except RemoteRejected as exc:
            if exc.status != 401:
                raise
        token = self.access_token(stale=token)  # expired early or revoked: refresh once
        return self.client().request(
            "GET", path, params=params, headers={"Authorization": f"Bearer {token}"}
        )

    def access_token(self, *, stale: str | None = None) -> str:
        """A valid access token; refreshing rotates the refresh token, saved before use."""
        current = self.state.load()
        if _usable(current, stale):
            return str(current["access_token"])

        def refresh(state: dict[str, Any]) -> dict[str, Any]:
            if _usable(state, stale):  # another process refreshed while we waited
                return state
            refresh_token = state.get("refresh_token") or self.config["refresh_token"]
            try:
                resp = self.client().request(
                    "POST",
                    "api/oauth2/token",
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": refresh_token,
                        "client_id": self.config["client_id"],
                        "client_secret": self.config["client_secret"],
                    },
                )
            except RemoteRejected as exc:
                raise RemoteRejected(
                    f"Exact Online refused the refresh token (HTTP {exc.status}): "
                    "authorize the connector again",
                    status=exc.status,
                ) from None
            body = resp.json()
            try:
                return {
                    "access_token": body["access_token"],
                    "refresh_token": body["refresh_token"],
                    "expires_at": time.time() + int(body["expires_in"]),
                }
            except (KeyError, TypeError, ValueError):
                raise RemoteUnavailable("token answer lacks access_token/refresh_token") from None

        return str(self.state.update(refresh)["access_token"])

    @classmethod
    def contract_example(cls) -> ContractExample:
        """A signed ``Delete`` notification, two forgeries and malformed bodies, for the tests."""
        config = {
            "base_url": "http://127.0.0.1:9",
            "division": 1234,
            "client_id": "contract-client",
            "client_secret": "contract-client-secret",
            "refresh_token": "contract-refresh-token",
            "webhook_secret": "contract-webhook-secret",
        }

        def sign(content: bytes, content_type: str = "application/json") -> WebhookRequest:
            """Exact signs the Content object inside the body: wrap ``content`` as one."""
            secret = str(config["webhook_secret"]).encode()
            digest = hmac.new(secret, content, hashlib.sha256).hexdigest().upper()
            body = b'{"Content":' + content + b',"HashCode":"' + digest.encode() + b'"}'
            return WebhookRequest(body, {"Content-Type": content_type})

        content = (
            b'{"Topic":"Accounts","ClientId":"contract-client","Division":1234,'
            b'"Action":"Delete","Key":"6f3c1a2e-0000-4000-8000-000000000001",'
            b'"ExactOnlineEndpoint":"https://start.exactonline.nl/api/v1/1234/crm/Accounts'
            b"(guid'6f3c1a2e-0000-4000-8000-000000000001')\","
            b'"EventCreatedOn":"2026-01-02T03:04:05.123"}'
        )
        good = sign(content)
        return ContractExample(
            config=config,
            sign=sign,
            webhooks=[good],
            forged=[
                WebhookRequest(good.body.replace(b"1234", b"1235", 1), good.headers),
                WebhookRequest(b'{"Content":' + content + b"}", good.headers),
            ],
            malformed=[
                (b'{"Topic":"Accounts","Division":1234}', "application/json"),
                (b'{"Topic":"Accounts","Division":1234,"Action":"Delete"}', "application/json"),
                (b'"not an object"', "application/json"),
            ],
        )


def split_signed(body: bytes) -> tuple[bytes | None, str | None]:
    """The raw ``Content`` text and the ``HashCode`` of a webhook body, without parsing it."""
    match = _CONTENT_FIRST.match(body)
    if match:
        return match.group(1), match.group(2).decode("ascii", "replace")
    match = _HASH_FIRST.match(body)
    if match:
        return match.group(2), match.group(1).decode("ascii", "replace")
    return None, None


def _usable(state: dict[str, Any], stale: str | None) -> bool:
    token = state.get("access_token")
    if not token or token == stale:
        return False
    return float(state.get("expires_at") or 0) - TOKEN_MARGIN > time.time()


def _remote_now(date_header: str | None) -> datetime | None:
    if not date_header:
        return None
    try:
        return parsedate_to_datetime(date_header).astimezone(UTC)
    except (TypeError, ValueError):
        return None
