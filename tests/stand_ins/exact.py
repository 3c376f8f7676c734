"""Exact Online stand-in: OAuth2 token endpoint, ``crm/Accounts``, ``crm/Contacts``, ``current/Me``,
and the webhook side (notifications and the subscription's validation POST) sent to the hub.

Recorded from the vendor reference in ``tests/stand_ins/vendor/README.md`` section 4 and the
samples in ``tests/stand_ins/vendor/exact/`` (sources, by the README's keys):

- REST (PQ: picqer/exact-php-client v4.6.0 @ 8b350573, ``Connection::parseResponse``): OData v2
  JSON ``{"d": {"results": [...], "__next": "...$skiptoken=guid'...'"}}``, each record with
  ``__metadata``, dates ``/Date(ms)/``; ``$select``, ``$filter`` (``Modified ge
  datetime'...'``, ``ID eq guid'...'``). Field meanings (PQ ``Account.php``, ``Contact.php``):
  ``Accounts.IsMailing`` is a **byte**, 1 = *excluded* from mailing marketing information;
  ``Contacts.IsMailingExcluded`` a boolean, true = excluded; ``Status`` A/S/P/C. Samples:
  ``rest-crm-accounts-page.json``, ``rest-crm-contacts-page.json`` (built, PQ shape).
- Rate limits (PQ ``Connection::extractRateLimits`` and README): every answer carries
  ``X-RateLimit-{Limit,Remaining,Reset}`` (daily) and ``X-RateLimit-Minutely-{Limit,Remaining,
  Reset}``, resets in epoch milliseconds. Past the minutely limit: 429 with the minutely headers
  only (PQ README: "Exact only sends the Minutely Limit headers"); past the daily limit: 429
  with the daily headers only (issue 12's statement; no primary source found).
- Tokens (PQ; EXI: picqer#644, websmurf/laravel-exact-online#18, #22, #23; PipedreamHQ#1655):
  ``POST /api/oauth2/token`` (form: grant_type=refresh_token, refresh_token, client_id,
  client_secret) answers ``access_token``, ``token_type``, ``expires_in`` as the digit string
  ``"600"`` and a NEW ``refresh_token`` (``token-response.json``). A spent refresh token gets
  the verbatim ``401 {"error":"unauthorized_client","error_description":"Old refresh token
  used."}`` (``token-error-old-refresh-token.json``, picqer#644); an expired one the verbatim
  400 of ``token-error-refresh-token-expired.json`` (websmurf#23). A refresh earlier than 30 s
  before the current access token expires is refused (websmurf#18 "TooEarlyToRefreshTokens",
  Pipedream#1655 "up to 30 seconds"): **status and body of that refusal are assumed** (400
  ``invalid_request``, see :data:`TOO_EARLY`); so is the 400 ``invalid_grant`` for a refresh
  token Exact never issued. An unknown or expired access token is 401.
- Webhooks (PQ ``Webhook/Authenticatable.php``; field set from client libraries): the body is
  ``{"Content":{...},"HashCode":"..."}``, HashCode = upper-case hex HMAC-SHA256 of the raw
  ``Content`` text with the app's webhook secret, ``/`` not escaped
  (``webhook-accounts-{create,update,delete}.json``, secret ``test-webhook-secret``). The
  subscription's validation request is an empty POST (``webhook-validation-request.bin``, 0
  bytes): **an assumption** from issue 12, confirmed by no source found.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import requests

from tests.stand_ins.base import Answer, Request, StandIn

VENDOR = Path(__file__).parent / "vendor" / "exact"
VENDOR_SECRET = "test-webhook-secret"  # the secret the vendor samples are signed with
# Assumed (no source gives the bytes): Exact's refusal of a refresh while the token is valid.
TOO_EARLY = (
    b'{"error":"invalid_request","error_description":"Token refresh too early: the access '
    b'token is still valid."}'
)
EARLY_WINDOW = 30.0  # seconds before expiry from which Exact accepts a refresh

_FILTER_MODIFIED = re.compile(r"^Modified ge datetime'([^']+)'$")
_FILTER_ID = re.compile(r"^ID eq guid'([0-9a-fA-F-]+)'$")
_SKIP = re.compile(r"^guid'([0-9a-fA-F-]+)'$")
_PATH = re.compile(r"^/api/v1/(\d+)/(crm/Accounts|crm/Contacts)$")


def vendor(name: str) -> bytes:
    """A vendor sample's bytes, as recorded (``tests/stand_ins/vendor/exact/<name>``)."""
    return (VENDOR / name).read_bytes()


def vendor_records(name: str) -> list[dict[str, Any]]:
    """The records of a vendor REST page sample, without their ``__metadata``."""
    page = json.loads(vendor(name))
    return [{k: v for k, v in r.items() if k != "__metadata"} for r in page["d"]["results"]]


def odata_date(when: datetime) -> str:
    return f"/Date({int(when.timestamp() * 1000)})/"


def account(n: int, modified: datetime, **extra: Any) -> dict[str, Any]:
    """An account as Exact returns it: ``IsMailing`` a byte (0: not excluded from mailings)."""
    record = {
        "ID": str(uuid.UUID(int=n)),
        "Code": f"{n:18d}",
        "Name": f"Company {n} B.V.",
        "Email": f"info@company{n}.example",
        "Status": "C",
        "IsMailing": 0,
        "Blocked": False,
        "Phone": "+31 20 123 4567",
        "City": "Delft",
        "Country": "NL ",
        "Modified": odata_date(modified),
    }
    record.update(extra)
    return record


def contact(n: int, modified: datetime, **extra: Any) -> dict[str, Any]:
    """A contact: ``IsMailingExcluded`` a boolean (false: not excluded)."""
    record = {
        "ID": str(uuid.UUID(int=(1 << 64) + n)),
        "Account": str(uuid.UUID(int=n)),
        "Email": f"person{n}@company{n}.example",
        "FirstName": f"Pat{n}",
        "LastName": f"Jansen{n}",
        "Phone": None,
        "IsMailingExcluded": False,
        "IsMainContact": True,
        "Modified": odata_date(modified),
    }
    record.update(extra)
    return record


def notification(
    action: str,
    key: str,
    *,
    topic: str = "Accounts",
    division: int = 1234,
    client_id: str = "0b1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    created: str = "2026-03-01T10:00:00.123",
) -> dict[str, Any]:
    """A notification's ``Content``, fields in the order of the vendor samples."""
    return {
        "Topic": topic,
        "ClientId": client_id,
        "Division": division,
        "Action": action,
        "Key": key,
        "ExactOnlineEndpoint": f"https://start.exactonline.nl/api/v1/{division}/crm/{topic}"
        f"(guid'{key}')",
        "EventCreatedOn": created,
    }


def webhook_body(secret: str, content: dict[str, Any]) -> bytes:
    """A notification as Exact sends it: Content, then its HMAC-SHA256 in upper-case hex."""
    text = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
    digest = hmac.new(secret.encode(), text, hashlib.sha256).hexdigest().upper()
    return b'{"Content":' + text + b',"HashCode":"' + digest.encode() + b'"}'


def deliver(callback_url: str, body: bytes) -> requests.Response:
    """POST a notification to a webhook URL over HTTP, as Exact does (JSON, no extra headers)."""
    return requests.post(
        callback_url, data=body, headers={"Content-Type": "application/json"}, timeout=10
    )


def validate_subscription(callback_url: str) -> requests.Response:
    """The subscription's validation request: a POST with no body (assumed, see the module)."""
    return requests.post(callback_url, data=vendor("webhook-validation-request.bin"), timeout=10)


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


class ExactStandIn(StandIn):
    def __init__(
        self,
        *,
        division: int = 1234,
        client_id: str = "client-id",
        client_secret: str = "client-secret",
        refresh_token: str = "refresh-0",
        rate_limit: int = 60,
        rate_window: float = 60.0,
        daily_limit: int = 5000,
        daily_reset: float | None = None,
        page_size: int = 60,
        token_lifetime: int = 600,
    ) -> None:
        super().__init__()
        self.division = division
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_tokens = {refresh_token}
        self.used_refresh_tokens: list[str] = []
        self.expired_refresh_tokens: set[str] = set()
        self.refused_refreshes: list[str] = []  # the error_description of each refusal
        # the expiry of the access token issued with each live refresh token
        self._issued_with: dict[str, float] = {}
        self.access_tokens: dict[str, float] = {}
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.daily_limit = daily_limit
        self.daily_reset = daily_reset or (time.time() // 86400 + 1) * 86400  # next UTC midnight
        self.daily_count = 0
        self.page_size = page_size
        self.token_lifetime = token_lifetime
        self.tables: dict[str, dict[str, dict[str, Any]]] = {"crm/Accounts": {}, "crm/Contacts": {}}
        self._window_start = time.time()
        self._window_count = 0
        self._rate_lock = threading.Lock()

    def put(self, table: str, *records: dict[str, Any]) -> None:
        for r in records:
            self.tables[table][r["ID"]] = r

    def revoke_access_tokens(self) -> None:
        """Refuse every access token issued so far, although none has expired (401)."""
        self.access_tokens = {t: 0.0 for t in self.access_tokens}

    def expire_access_tokens(self) -> None:
        """Every access token issued so far expires now, by Exact's clock (a refresh is due)."""
        self.access_tokens = {t: 0.0 for t in self.access_tokens}
        self._issued_with = {t: 0.0 for t in self._issued_with}

    def expire_refresh_tokens(self) -> None:
        """The live refresh tokens expire (unused for 30 days)."""
        self.expired_refresh_tokens |= self.refresh_tokens
        self.refresh_tokens.clear()

    def handle(self, req: Request) -> Answer:
        if req.path == "/api/oauth2/token" and req.method == "POST":
            return self._token(req)
        token = (req.header("Authorization") or "").removeprefix("Bearer ")
        if self.access_tokens.get(token, 0) < time.time():
            return Answer(401, b"", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        limit = self._rate()
        if limit.status == 429:
            return limit
        if req.path == "/api/v1/current/Me":
            me = {"CurrentDivision": self.division, "FullName": "Stand-in User"}
            return self._ok({"d": {"results": [me]}}, limit.headers)
        m = _PATH.match(req.path)
        if not m or int(m[1]) != self.division:
            return Answer(404, _error("Resource not found"), limit.headers)
        return self._list(req, m[2], limit.headers)

    def _token(self, req: Request) -> Answer:
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return self._refuse(400, _json({"error": "invalid_client"}))
        if form.get("grant_type") != "refresh_token":
            return self._refuse(400, _json({"error": "unsupported_grant_type"}))
        old = form.get("refresh_token", "")
        if old in self.used_refresh_tokens:
            return self._refuse(401, vendor("token-error-old-refresh-token.json"))
        if old in self.expired_refresh_tokens:
            return self._refuse(400, vendor("token-error-refresh-token-expired.json"))
        if old not in self.refresh_tokens:
            return self._refuse(400, _json({"error": "invalid_grant"}))
        if self._issued_with.get(old, 0.0) - EARLY_WINDOW > time.time():
            return self._refuse(400, TOO_EARLY)
        self.refresh_tokens.discard(old)
        self._issued_with.pop(old, None)
        self.used_refresh_tokens.append(old)
        new_refresh = "refresh-" + secrets.token_hex(8)
        access = "access-" + secrets.token_hex(8)
        expires = time.time() + self.token_lifetime
        self.refresh_tokens.add(new_refresh)
        self._issued_with[new_refresh] = expires
        self.access_tokens[access] = expires
        body = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": str(self.token_lifetime),
            "refresh_token": new_refresh,
        }
        return self._ok(body, {})

    def _refuse(self, status: int, body: bytes) -> Answer:
        self.refused_refreshes.append(str(json.loads(body).get("error_description") or ""))
        return Answer(status, body, {"Content-Type": "application/json"})

    def _rate(self) -> Answer:
        """Count one API call against both limits; a 429 carries only the limit it hit."""
        with self._rate_lock:
            now = time.time()
            if now - self._window_start >= self.rate_window:
                self._window_start, self._window_count = now, 0
            if now >= self.daily_reset:
                self.daily_reset, self.daily_count = self.daily_reset + 86400, 0
            minute_reset_ms = int((self._window_start + self.rate_window) * 1000)
            daily = {
                "X-RateLimit-Limit": str(self.daily_limit),
                "X-RateLimit-Reset": str(int(self.daily_reset * 1000)),
            }
            if self.daily_count >= self.daily_limit:
                return Answer(
                    429, _error("API rate limit exceeded."), daily | {"X-RateLimit-Remaining": "0"}
                )
            over = self._window_count >= self.rate_limit
            minutely = {
                "X-RateLimit-Minutely-Limit": str(self.rate_limit),
                "X-RateLimit-Minutely-Reset": str(minute_reset_ms),
            }
            if over:
                minutely["X-RateLimit-Minutely-Remaining"] = "0"
                return Answer(429, _error("API rate limit exceeded."), minutely)
            self._window_count += 1
            self.daily_count += 1
            minutely["X-RateLimit-Minutely-Remaining"] = str(self.rate_limit - self._window_count)
            daily["X-RateLimit-Remaining"] = str(self.daily_limit - self.daily_count)
        return Answer(200, None, daily | minutely)

    def _ok(self, data: Any, headers: dict[str, str]) -> Answer:
        return Answer(
            200, _json(data), {"Content-Type": "application/json; charset=utf-8"} | headers
        )

    def _list(self, req: Request, table: str, headers: dict[str, str]) -> Answer:
        rows = sorted(self.tables[table].values(), key=lambda r: r["ID"])
        flt = req.arg("$filter")
        if flt:
            if m := _FILTER_MODIFIED.match(flt):
                since = datetime.fromisoformat(m[1]).replace(tzinfo=UTC)
                rows = [r for r in rows if _ms(r["Modified"]) >= since.timestamp() * 1000]
            elif m := _FILTER_ID.match(flt):
                rows = [r for r in rows if r["ID"] == m[1].lower()]
            else:
                return Answer(400, _error(f"Invalid filter: {flt}"), headers)
        skip = req.arg("$skiptoken")
        if skip:
            m = _SKIP.match(skip)
            if not m:
                return Answer(400, _error("Invalid skiptoken"), headers)
            rows = [r for r in rows if r["ID"] > m[1]]
        select = [s.strip() for s in (req.arg("$select") or "").split(",") if s.strip()]
        page, rest = rows[: self.page_size], rows[self.page_size :]
        results = []
        for r in page:
            uri = f"{self._base(req)}/api/v1/{self.division}/{table}(guid'{r['ID']}')"
            out = {"__metadata": {"uri": uri, "type": f"Exact.Web.Api.Models.{table[4:-1]}"}}
            out.update({k: v for k, v in r.items() if not select or k in select})
            results.append(out)
        body: dict[str, Any] = {"results": results}
        if rest:
            query = {k: v[0] for k, v in req.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = f"guid'{page[-1]['ID']}'"
            qs = "&".join(f"{k}={quote(v, safe=',')}" for k, v in query.items())
            body["__next"] = f"{self._base(req)}{req.path}?{qs}"
        return self._ok({"d": body}, headers)

    def _base(self, req: Request) -> str:
        return f"http://{req.header('Host')}"


def _ms(value: str) -> int:
    return int(value[len("/Date(") : -len(")/")])


def _error(message: str) -> dict[str, Any]:
    return {"error": {"code": "", "message": {"lang": "", "value": message}}}
