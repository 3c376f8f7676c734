"""Exact Online: accounts and contacts, by webhook notification or pulled over REST (OData).

A webhook body is ``{"Content": {"Topic", "ClientId", "Division", "Action", "Key",
"ExactOnlineEndpoint", "EventCreatedOn"}, "HashCode": "..."}``; the hash is the HMAC-SHA256 of
the ``Content`` JSON text exactly as sent (so it is cut out of the raw body, not re-serialized)
with the app's webhook secret, in upper-case hex (as picqer/exact-php-client v4.6.0
``Webhook/Authenticatable.php`` checks it). A notification names a record only: for
``Create``/``Update`` the record is fetched from ``crm/Accounts`` or ``crm/Contacts``; a
``Delete`` becomes a ``record.deleted`` fact (see :meth:`ExactConnector.deleted_fact`) that the
hub carries out (``hub.profiles.records``): the profile's link to the record goes, or the
profile, as ``on_delete`` says; an id the hub does not know creates nobody.

A new subscription is validated by an empty POST shortly after it is created (issue 12; no
Exact document confirming it was found): :meth:`ExactConnector.handshake` answers it 200 with
an empty body and stores nothing.

Consent: ``Accounts.IsMailing`` is a byte meaning *excluded from mailing marketing
information* (1 = excluded) and ``Contacts.IsMailingExcluded`` a boolean (true = excluded)
(picqer v4.6.0 ``Account.php``/``Contact.php``, generated from Exact's REST reference). An
exclusion is stated as ``unsubscribed``; not being excluded is no opt-in, so nothing is stated.

OAuth2: access tokens live 10 minutes and every refresh returns a new refresh token, the old one
being dead from then on ("Old refresh token used."). Exact refuses a refresh while the access
token is still valid (except in its last 30 seconds), so a token is refreshed only when it has
expired or is about to, never because of a 401: a 401 on a token that is still valid is a
real refusal, reported. The new pair is written through the :class:`StateStore` (encrypted,
under a lock, committed) before the access token is used, so a crash cannot lose it.

Rate limits: the minutely limit (``X-RateLimit-Minutely-{Remaining,Reset}``, epoch ms) is
waited out in place when short (``connectors.http.RemoteClient``); the daily limit
(``X-RateLimit-{Limit,Remaining,Reset}``; a 429 that carries no minutely headers) ends the
run, the retry coming after the daily reset, and is kept in the instance's state so that
webhooks and the other stream do not spend requests Exact will refuse.
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

import requests

from connectors.base import (
    ConfigField,
    Connector,
    ContractExample,
    FieldKind,
    Page,
    WebhookAnswer,
    WebhookRequest,
)
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
# The field of each topic that says the record is excluded from marketing mail.
EXCLUSION = {"Accounts": "IsMailing", "Contacts": "IsMailingExcluded"}
ON_DELETE = ("unlink", "delete", "keep")
RECORD_DELETED = "record.deleted"  # carried out by the hub (hub.profiles.records)
RECORD_DELETED_KEPT = "exact.record.deleted"  # on_delete=keep: a record of it, nothing acts
_CONTENT_FIRST = re.compile(
    rb'^\s*\{\s*"Content"\s*:\s*(.*?)\s*,\s*"HashCode"\s*:\s*"([^"]*)"\s*\}\s*$', re.S
)
_HASH_FIRST = re.compile(
    rb'^\s*\{\s*"HashCode"\s*:\s*"([^"]*)"\s*,\s*"Content"\s*:\s*(.*?)\s*\}\s*$', re.S
)
# Refresh this many seconds before the access token expires, no sooner: Exact refuses a refresh
# earlier than its last 30 seconds ("too early").
TOKEN_MARGIN = 20
EARLY_RETRY = 60.0  # a refresh refused as too early: Exact accepts one in the token's last 30 s
MINUTE_FALLBACK = 60.0  # a 429 that says nothing of when: picqer's README says one minute


class _OldRefreshToken(Exception):
    """Exact said "Old refresh token used.": the refresh token sent was already spent."""

    def __init__(self, token: str) -> None:
        super().__init__("old refresh token used")
        self.token = token


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
        ConfigField(
            "on_delete",
            default="unlink",
            choices=ON_DELETE,
            help="what a Delete notification does: unlink (remove the profile's link to the "
            "record), delete (delete the profile) or keep (record it only)",
        ),
        ConfigField("overlap_seconds", FieldKind.INTEGER, default=300, minimum=0),
        ConfigField("timeout_seconds", FieldKind.NUMBER, default=30.0, minimum=0.1),
        ConfigField("max_inline_wait", FieldKind.NUMBER, default=5.0, minimum=0),
    )

    _client: RemoteClient | None = None
    _last: requests.Response | None = None  # the latest answer, as the response hook saw it
    _daily_reset: float | None = None  # epoch seconds: the daily limit is spent until then
    _daily_loaded = False

    # -- push ----------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest) -> WebhookAnswer | None:
        """Answer a subscription's validation request (an empty POST) with an empty 200.

        Recognised narrowly: no body at all (``Content-Length: 0``). Every notification has a
        body, so none can pass as a validation; nothing is stored for it.
        """
        length = (request.header("Content-Length") or "0").strip()
        if request.body == b"" and length == "0":
            return WebhookAnswer(200, None)
        return None

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
            return [self.deleted_fact(topic, key, content.get("EventCreatedOn"))]
        if action not in ("Create", "Update"):
            raise PayloadInvalid("Content.Action", f"{action!r} is not Create, Update or Delete")
        found = self._get(
            TOPICS[topic], {"$select": SELECT[topic], "$filter": f"ID eq guid'{key}'"}
        )
        records = as_list(as_dict(found.get("d") or {}, "d").get("results") or [], "d.results")
        return [self.record_fact(topic, as_dict(r, "d.results.0"), "d.results.0") for r in records]

    def deleted_fact(self, topic: str, key: str, when: Any) -> FactIn:
        """The fact of a record deleted in Exact, for the hub to act on (``on_delete``).

        ``record.deleted`` about ``external_ids.exact`` only (no email: the record is gone, and
        an email could name someone else) with ``create: false``, so an id the hub does not
        know creates nobody; ``data.action`` is ``unlink`` or ``delete``. With ``keep`` the
        fact is ``exact.record.deleted``: kept for rules and the timeline, acted on by nobody.
        """
        rid = key.strip().lower()
        action = self.config["on_delete"]
        return make_fact(
            {"occurred_at": "Content.EventCreatedOn", "profile": "Content.Key"},
            type=RECORD_DELETED_KEPT if action == "keep" else RECORD_DELETED,
            source=self.name,
            source_id=f"{self.instance}:{topic}:{rid}:deleted:{when or ''}",
            occurred_at=parse_time(when, "Content.EventCreatedOn") if when else None,
            profile={"external_ids": {"exact": rid}, "create": False},
            data={
                "source": self.name,
                "external_id": rid,
                "record": topic,
                "action": action,
                "instance": self.instance,
                "division": self.config["division"],
            },
        )

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
        """A ``profile.upserted`` fact from an account or contact record (``topic``) at ``path``.

        ``exact_mailing_excluded`` keeps Exact's flag as it is (true: excluded); an exclusion
        is also stated as consent ``unsubscribed`` with the flag as proof. A record that is not
        excluded states no consent: Exact records no opt-in.
        """
        rid = str(need(r, "ID", path)).lower()
        modified = parse_time(need(r, "Modified", path), f"{path}.Modified")
        flag = EXCLUSION[topic]
        raw = r.get(flag)
        excluded = None if raw is None else _flag(raw, f"{path}.{flag}")
        if topic == "Accounts":
            status = r.get("Status")
            code = str(status).strip().upper() if status is not None else ""
            fields = compact(
                {
                    "company": r.get("Name"),
                    "exact_code": (r.get("Code") or "").strip() or None,
                    "exact_status": STATUS.get(code, code.lower()) if code else None,
                    "exact_mailing_excluded": excluded,
                    "phone": r.get("Phone"),
                    "city": r.get("City"),
                    "country": (r.get("Country") or "").strip() or None,
                }
            )
        else:
            fields = compact(
                {
                    "first_name": r.get("FirstName"),
                    "last_name": r.get("LastName"),
                    "phone": r.get("Phone"),
                    "exact_account": (r.get("Account") or "").lower() or None,
                    "exact_mailing_excluded": excluded,
                }
            )
        profile: dict[str, Any] = {"external_ids": {"exact": rid}, "fields": fields}
        if r.get("Email"):
            profile["email"] = r["Email"]
        if excluded:
            shown = "1" if flag == "IsMailing" else "true"
            profile["consent"] = {
                "status": "unsubscribed",
                "proof": f"exact {topic}.{flag}={shown} (excluded from mailing)",
                "at": modified,
                "evidence": {"record": topic, "id": rid, "field": flag, "value": raw},
            }
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
            self._client.session.hooks["response"].append(self._seen)
        return self._client

    def _seen(self, resp: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """Response hook: keep the answer, and note a spent daily limit (epoch ms reset).

        The daily limit is spent when ``X-RateLimit-Remaining`` says 0, or on a 429 that
        carries the daily headers and no minutely ones (the minutely limit's 429 carries
        only those: ``RemoteClient`` waits that one out).
        """
        self._last = resp
        headers = resp.headers
        reset, remaining = headers.get("X-RateLimit-Reset"), headers.get("X-RateLimit-Remaining")
        if reset is None:
            return resp
        try:
            until = int(reset) / 1000.0
            left = int(remaining) if remaining is not None else None
        except ValueError:
            return resp
        minutely = headers.get("X-RateLimit-Minutely-Remaining") is not None
        if (left is not None and left <= 0) or (resp.status_code == 429 and not minutely):
            self._daily_reset = until
        return resp

    def _get(self, path: str, params: dict[str, str], *, division: bool = True) -> Any:
        resp = self._request(path, params, division=division)
        try:
            return as_dict(resp.json(), "")
        except ValueError:
            raise RemoteRejected(f"{path}: answer is not JSON") from None

    def _request(self, path: str, params: dict[str, str] | None, *, division: bool = True) -> Any:
        """GET ``path`` with a valid token; a 401 refreshes only a token that has expired."""
        if not path.startswith("http"):
            prefix = f"api/v1/{self.config['division']}/" if division else "api/v1/"
            path = prefix + path
        self._check_daily(path)  # before a refresh that would be of no use today
        token = self.access_token()
        try:
            return self._send(path, params, token)
        except RemoteRejected as exc:
            if exc.status != 401:
                raise
        state = self.state.load()
        newer = state.get("access_token")
        if newer and newer != token and _usable(state, None):
            return self._send(path, params, str(newer))  # another process refreshed meanwhile
        if newer == token and _usable(state, None):
            until = datetime.fromtimestamp(float(state["expires_at"]), UTC)
            raise RemoteRejected(
                "Exact Online refused the access token (HTTP 401) although it is valid until "
                f"{until:%H:%M:%S} UTC: the app's authorization was withdrawn or the user has "
                f"no access to division {self.config['division']}. The hub does not refresh a "
                "token that has not expired (Exact refuses that); check the app's rights in "
                "Exact Online, then authorize the connector again if need be",
                status=401,
            )
        token = self.access_token(stale=token)  # it expired in flight: refresh once
        return self._send(path, params, token)

    def _send(self, path: str, params: dict[str, str] | None, token: str) -> Any:
        """One API request, never while the daily limit is spent; a 429 waits its reset."""
        self._check_daily(path)
        self._daily_reset, self._last = None, None
        try:
            resp = self.client().request(
                "GET", path, params=params, headers={"Authorization": f"Bearer {token}"}
            )
        except RemoteUnavailable as exc:
            self._check_daily(path, save=True)
            if self._last is not None and self._last.status_code == 429 and not exc.retry_after:
                raise RemoteUnavailable(str(exc), retry_after=MINUTE_FALLBACK) from None
            raise
        if self._daily_reset is not None:  # this was the day's last request: say so now
            self._remember_daily()
        return resp

    def _check_daily(self, path: str, *, save: bool = False) -> None:
        """Raise :class:`RemoteUnavailable` until the daily reset once the day's limit is spent.

        ``save``: the limit was just met; keep its reset in the state for the other processes.
        """
        if not self._daily_loaded:
            self._daily_loaded = True
            stored = self.state.load().get("daily_reset")
            if stored and self._daily_reset is None:
                self._daily_reset = float(stored)
        until = self._daily_reset
        if until is None:
            return
        wait = until - time.time()
        if wait <= 0:
            self._daily_reset = None
            return
        if save:
            self._remember_daily()
        when = datetime.fromtimestamp(until, UTC)
        raise RemoteUnavailable(
            f"GET {path}: Exact Online's daily rate limit is spent until {when:%Y-%m-%d %H:%M} "
            "UTC (X-RateLimit-Reset)",
            retry_after=wait + 1,
        )

    def _remember_daily(self) -> None:
        until = self._daily_reset
        if until is not None:
            self.state.update(lambda state: {**state, "daily_reset": until})

    def access_token(self, *, stale: str | None = None) -> str:
        """A valid access token, refreshed only once expired or in its last seconds.

        Refreshing rotates the refresh token, saved before use. ``stale``: a token the caller
        saw expire; a newer one another process saved is used instead of refreshing again.
        """
        current = self.state.load()
        if _usable(current, stale):
            return str(current["access_token"])
        spent: set[str] = set()
        while True:
            try:
                updated = self.state.update(lambda state: self._refresh(state, stale))
                return str(updated["access_token"])
            except _OldRefreshToken as old:
                spent.add(old.token)
            # Reload: a copy that does not share our lock may have saved a newer token.
            latest = self.state.load()
            if _usable(latest, stale):
                return str(latest["access_token"])
            if latest.get("refresh_token") and latest["refresh_token"] not in spent:
                continue
            raise RemoteRejected(
                "Exact Online refused the refresh token: 'Old refresh token used.' Another "
                "copy of this connector (a second hub, a script using the same authorization) "
                "spent it and its new token was not saved here: stop the other copy, then "
                "authorize the connector again and save the new refresh token",
                status=401,
            )

    def _refresh(self, state: dict[str, Any], stale: str | None) -> dict[str, Any]:
        """Under the state's lock: refresh unless another process did so while we waited."""
        if _usable(state, stale):
            return state
        refresh_token = str(state.get("refresh_token") or self.config["refresh_token"])
        sent = time.time()  # Exact counts the lifetime from its answer: never assume longer
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
            raise self._refusal(exc, refresh_token) from None
        try:
            body = resp.json()
            return {
                **state,
                "access_token": body["access_token"],
                "refresh_token": body["refresh_token"],
                "expires_at": sent + int(body["expires_in"]),
            }
        except (KeyError, TypeError, ValueError):
            raise RemoteUnavailable("token answer lacks access_token/refresh_token") from None

    def _refusal(self, exc: RemoteRejected, refresh_token: str) -> Exception:
        """The error for a refused refresh, by Exact's ``error_description``."""
        description = ""
        if self._last is not None:
            try:
                description = str(self._last.json().get("error_description") or "")
            except (ValueError, AttributeError):
                description = ""
        lowered = description.lower()
        if "old refresh token" in lowered:
            return _OldRefreshToken(refresh_token)
        if "refresh token expired" in lowered:
            return RemoteRejected(
                f"Exact Online: {description} A refresh token unused for 30 days expires: "
                "authorize the connector again and save the new refresh token",
                status=exc.status,
            )
        if "early" in lowered:  # by Exact's clock the token is still valid: ours runs ahead
            return RemoteUnavailable(
                f"Exact Online refused to refresh the access token this early ({description}); "
                "the hub's clock may run ahead of Exact's: retrying in a minute",
                retry_after=EARLY_RETRY,
            )
        return RemoteRejected(
            f"Exact Online refused the refresh token (HTTP {exc.status}"
            f"{': ' + description if description else ''}): authorize the connector again",
            status=exc.status,
        )

    @classmethod
    def contract_example(cls) -> ContractExample:
        """A signed ``Delete`` notification, the validation POST, forgeries, malformed bodies."""
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

        def notification(topic: str, action: str) -> bytes:
            return (
                b'{"Topic":"' + topic.encode() + b'","ClientId":"contract-client",'
                b'"Division":1234,"Action":"' + action.encode() + b'",'
                b'"Key":"6f3c1a2e-0000-4000-8000-000000000001",'
                b'"ExactOnlineEndpoint":"https://start.exactonline.nl/api/v1/1234/crm/'
                + topic.encode()
                + b"(guid'6f3c1a2e-0000-4000-8000-000000000001')\","
                b'"EventCreatedOn":"2026-01-02T03:04:05.123"}'
            )

        content = notification("Accounts", "Delete")
        good = sign(content)
        return ContractExample(
            config=config,
            sign=sign,
            webhooks=[good, sign(notification("Contacts", "Delete"))],
            forged=[
                WebhookRequest(good.body.replace(b"1234", b"1235", 1), good.headers),
                WebhookRequest(b'{"Content":' + content + b"}", good.headers),
            ],
            malformed=[
                (b'{"Topic":"Accounts","Division":1234}', "application/json"),
                (b'{"Topic":"Accounts","Division":1234,"Action":"Delete"}', "application/json"),
                (b'"not an object"', "application/json"),
            ],
            empty=[sign(notification("Items", "Update"))],  # a topic the hub does not map
            handshakes=[WebhookRequest(b"", {"Content-Length": "0"})],
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


def _flag(value: Any, field: str) -> bool:
    """Exact's flag as a boolean: a byte (``IsMailing`` 0/1), a boolean, or either as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return text == "true"
        if text.isdigit():
            return int(text) != 0
    raise PayloadInvalid(field, f"{value!r} is not a flag (0/1 or true/false)")


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
