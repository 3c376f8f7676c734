"""Drupal JSON:API stand-in: ``/jsonapi/user/user`` with filters, sorting and offset paging.

Shapes follow Drupal core's JSON:API module: a document ``{"jsonapi": ..., "data": [...],
"links": {"self": ..., "next": ...}}``; each user a resource object of type ``user--user``
with ``attributes`` (``drupal_internal__uid``, ``name``, ``mail``, ``status``, ``created``,
``changed`` as RFC 3339, ``langcode``, fields) and ``relationships.roles``. Filters use the
long form ``filter[x][condition][path|operator|value]``; ``page[limit]`` is capped at 50.
Reading ``mail`` needs an authenticated account (HTTP basic here).
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from tests.stand_ins.base import Answer, Request, StandIn

_COND = re.compile(r"^filter\[([^\]]+)\]\[condition\]\[(path|operator|value)\]$")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
MAX_LIMIT = 50


def user(uid: int, *, changed: int | None = None, mail: str | None = None) -> dict[str, Any]:
    changed_at = EPOCH + timedelta(seconds=uid if changed is None else changed)
    return {
        "type": "user--user",
        "id": str(uuid.UUID(int=uid)),
        "links": {"self": {"href": f"/jsonapi/user/user/{uuid.UUID(int=uid)}"}},
        "attributes": {
            "display_name": f"user{uid}",
            "drupal_internal__uid": uid,
            "langcode": "nl",
            "name": f"user{uid}",
            "mail": mail if mail is not None else f"user{uid}@example.org",
            "timezone": "Europe/Amsterdam",
            "status": uid % 5 != 0,
            "created": (EPOCH + timedelta(seconds=uid)).isoformat(),
            "changed": changed_at.isoformat(),
            "init": f"user{uid}@example.org",
            "field_first_name": f"Uma{uid}",
        },
        "relationships": {
            "roles": {
                "data": [
                    {
                        "type": "user_role--user_role",
                        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "editor")),
                        "meta": {"drupal_internal__target_id": "editor"},
                    }
                ]
            }
        },
    }


class DrupalStandIn(StandIn):
    def __init__(self, username: str = "hub", password: str = "drupal-pass") -> None:
        super().__init__()
        self.credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.users: dict[int, dict[str, Any]] = {}

    def put(self, *users: dict[str, Any]) -> None:
        for u in users:
            self.users[u["attributes"]["drupal_internal__uid"]] = u

    def handle(self, req: Request) -> Answer:
        if req.path != "/jsonapi/user/user" or req.method != "GET":
            return Answer(404, _errors("404", "Not Found", "No route found"))
        if req.header("Authorization") != f"Basic {self.credentials}":
            return Answer(
                403, _errors("403", "Forbidden", "The current user is not allowed to GET")
            )
        conditions: dict[str, dict[str, str]] = {}
        for name, values in req.query.items():
            if m := _COND.match(name):
                conditions.setdefault(m[1], {})[m[2]] = values[0]
        rows = list(self.users.values())
        for cond in conditions.values():
            if cond.get("path") != "changed":
                return Answer(400, _errors("400", "Bad Request", "stand-in filters on changed"))
            value = int(cond["value"])
            op = cond.get("operator", "=")
            rows = [r for r in rows if _compare(_epoch(r), op, value)]
        if req.arg("sort") not in (None, "changed,drupal_internal__uid"):
            return Answer(400, _errors("400", "Bad Request", "unsupported sort"))
        rows.sort(key=lambda r: (_epoch(r), r["attributes"]["drupal_internal__uid"]))
        limit = min(int(req.arg("page[limit]", str(MAX_LIMIT)) or MAX_LIMIT), MAX_LIMIT)
        offset = int(req.arg("page[offset]", "0") or 0)
        page = rows[offset : offset + limit]
        base = f"http://{req.header('Host')}{req.path}"
        links: dict[str, Any] = {"self": {"href": base}}
        if offset + limit < len(rows):
            query = {k: v[0] for k, v in req.query.items()}
            query["page[offset]"] = str(offset + limit)
            query["page[limit]"] = str(limit)
            links["next"] = {
                "href": base + "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
            }
        return Answer(
            200,
            {"jsonapi": {"version": "1.0"}, "data": page, "links": links},
            {"Content-Type": "application/vnd.api+json"},
        )


def _epoch(user: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(user["attributes"]["changed"]).timestamp())


def _compare(left: int, op: str, right: int) -> bool:
    return {
        "=": left == right,
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }[op]


def _errors(status: str, title: str, detail: str) -> dict[str, Any]:
    return {
        "jsonapi": {"version": "1.0"},
        "errors": [{"status": status, "title": title, "detail": detail}],
    }
