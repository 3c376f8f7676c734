"""Exact Online stand-in: OAuth2 token endpoint, ``crm/Accounts``, ``crm/Contacts``, ``current/Me``.

As documented by Exact: ``POST /api/oauth2/token`` (form: grant_type=refresh_token,
refresh_token, client_id, client_secret) answers ``access_token``, ``token_type``,
``expires_in`` ("600") and a NEW ``refresh_token``, the old one being refused from then on
(``{"error": "invalid_grant"}``). The REST API (``/api/v1/{division}/...``) is OData v2 JSON:
``{"d": {"results": [...], "__next": "...$skiptoken=guid'...'"}}``, dates as ``/Date(ms)/``,
``$select`` and ``$filter`` (``Modified ge datetime'...'``, ``ID eq guid'...'``). Every answer
carries the ``X-RateLimit-Minutely-{Limit,Remaining,Reset}`` headers; past the limit it is 429.
An unknown or expired access token is 401.
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
from typing import Any
from urllib.parse import parse_qs, quote

from tests.stand_ins.base import Answer, Request, StandIn

_FILTER_MODIFIED = re.compile(r"^Modified ge datetime'([^']+)'$")
_FILTER_ID = re.compile(r"^ID eq guid'([0-9a-fA-F-]+)'$")
_SKIP = re.compile(r"^guid'([0-9a-fA-F-]+)'$")
_PATH = re.compile(r"^/api/v1/(\d+)/(crm/Accounts|crm/Contacts)$")


def odata_date(when: datetime) -> str:
    return f"/Date({int(when.timestamp() * 1000)})/"


def account(n: int, modified: datetime, **extra: Any) -> dict[str, Any]:
    record = {
        "ID": str(uuid.UUID(int=n)),
        "Code": f"{n:18d}",
        "Name": f"Company {n} B.V.",
        "Email": f"info@company{n}.example",
        "Status": "C",
        "IsMailing": True,
        "Phone": "+31 20 123 4567",
        "City": "Delft",
        "Country": "NL ",
        "Modified": odata_date(modified),
    }
    record.update(extra)
    return record


def contact(n: int, modified: datetime, **extra: Any) -> dict[str, Any]:
    record = {
        "ID": str(uuid.UUID(int=(1 << 64) + n)),
        "Account": str(uuid.UUID(int=n)),
        "Email": f"person{n}@company{n}.example",
        "FirstName": f"Pat{n}",
        "LastName": f"Jansen{n}",
        "Phone": None,
        "IsMailingExcluded": False,
        "Modified": odata_date(modified),
    }
    record.update(extra)
    return record


def webhook_body(secret: str, content: dict[str, Any]) -> bytes:
    """A notification as Exact sends it: Content, then its HMAC-SHA256 in upper-case hex."""
    text = json.dumps(content, separators=(",", ":")).encode()
    digest = hmac.new(secret.encode(), text, hashlib.sha256).hexdigest().upper()
    return b'{"Content":' + text + b',"HashCode":"' + digest.encode() + b'"}'


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
        page_size: int = 60,
        token_lifetime: int = 600,
    ) -> None:
        super().__init__()
        self.division = division
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_tokens = {refresh_token}
        self.used_refresh_tokens: list[str] = []
        self.access_tokens: dict[str, float] = {}
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.page_size = page_size
        self.token_lifetime = token_lifetime
        self.tables: dict[str, dict[str, dict[str, Any]]] = {"crm/Accounts": {}, "crm/Contacts": {}}
        self._window_start = time.time()
        self._window_count = 0
        self._rate_lock = threading.Lock()

    def put(self, table: str, *records: dict[str, Any]) -> None:
        for r in records:
            self.tables[table][r["ID"]] = r

    def expire_access_tokens(self) -> None:
        self.access_tokens = {t: 0.0 for t in self.access_tokens}

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
            return Answer(200, {"d": {"results": [me]}}, limit.headers)
        m = _PATH.match(req.path)
        if not m or int(m[1]) != self.division:
            return Answer(404, _error("Resource not found"), limit.headers)
        return self._list(req, m[2], limit.headers)

    def _token(self, req: Request) -> Answer:
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return Answer(400, {"error": "invalid_client"})
        if form.get("grant_type") != "refresh_token":
            return Answer(400, {"error": "unsupported_grant_type"})
        old = form.get("refresh_token", "")
        if old not in self.refresh_tokens:
            return Answer(400, {"error": "invalid_grant"})
        self.refresh_tokens.discard(old)
        self.used_refresh_tokens.append(old)
        new_refresh = "refresh-" + secrets.token_hex(8)
        self.refresh_tokens.add(new_refresh)
        access = "access-" + secrets.token_hex(8)
        self.access_tokens[access] = time.time() + self.token_lifetime
        return Answer(
            200,
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": str(self.token_lifetime),
                "refresh_token": new_refresh,
            },
        )

    def _rate(self) -> Answer:
        with self._rate_lock:
            now = time.time()
            if now - self._window_start >= self.rate_window:
                self._window_start, self._window_count = now, 0
            reset_ms = int((self._window_start + self.rate_window) * 1000)
            over = self._window_count >= self.rate_limit
            if not over:
                self._window_count += 1
            headers = {
                "X-RateLimit-Minutely-Limit": str(self.rate_limit),
                "X-RateLimit-Minutely-Remaining": str(self.rate_limit - self._window_count),
                "X-RateLimit-Minutely-Reset": str(reset_ms),
            }
        if over:
            return Answer(429, _error("API rate limit exceeded."), headers)
        return Answer(200, None, headers)

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
        return Answer(200, {"d": body}, headers)

    def _base(self, req: Request) -> str:
        return f"http://{req.header('Host')}"


def _ms(value: str) -> int:
    return int(value[len("/Date(") : -len(")/")])


def _error(message: str) -> dict[str, Any]:
    return {"error": {"code": "", "message": {"lang": "", "value": message}}}
