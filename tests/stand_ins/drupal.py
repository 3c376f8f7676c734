"""Drupal stand-ins: the JSON:API users the connector pulls, and the Webform handler's posts.

JSON:API (:class:`DrupalStandIn`): shapes follow Drupal core's JSON:API module: a document
``{"jsonapi": ..., "data": [...], "links": {"self": ..., "next": ...}}``; each user a resource
object of type ``user--user`` with ``attributes`` (``drupal_internal__uid``, ``name``,
``mail``, ``status``, ``created``, ``changed`` as RFC 3339, ``langcode``, fields) and
``relationships.roles``. Filters use the long form ``filter[x][condition][path|operator|value]``;
``page[limit]`` is capped at 50. Reading ``mail`` needs an authenticated account (HTTP basic
here).

Webform "Remote post" (:class:`RemotePostHandler`, :class:`Submission`): what Webform 6.x
sends, from its source (drupal.org project ``webform`` 6.2.x, ``src/Plugin/WebformHandler/
RemotePostWebformHandler.php``, as mirrored in ``ITCare-Company/webform`` @ b7477b8; 6.1.x is
the same in these parts; the 8.x-5.x branch, ``drupalprojects/webform``, has a single
``draft`` state instead of two):

- ``defaultConfiguration()``: ``type`` ``x-www-form-urlencoded``, ``excluded_data`` = every
  ``webform_submission`` base field (``array_keys(getBaseFieldDefinitions())``), ``custom_data``
  and ``custom_options`` (YAML, Guzzle request options: ``headers`` among them) empty, one URL
  and custom data per state: ``completed``, ``updated``, ``deleted``, ``draft_created``,
  ``draft_updated``, ``converted`` (``WebformSubmissionInterface::STATE_*``); a state without
  a URL posts nothing.
- ``getRequestData()``: ``$data = $submission->toArray(TRUE)`` (base fields in
  ``baseFieldDefinitions()`` order, each its first value or ``''`` when empty, then ``data``),
  ``metatag`` dropped, ``$data = $element_data + $data`` (element values first, winning over a
  base field of the same key), ``array_diff_key($data, excluded_data)``, then ``$custom_data +
  $data`` and ``$state_custom_data + $data`` (custom data first and winning).
- ``remotePost()``: ``$request_options[$type === 'json' ? 'json' : 'form_params'] = $data``.
  Guzzle 7 (``src/Client.php``, ``applyOptions``) turns ``form_params`` into
  ``http_build_query($params, '', '&')`` with ``Content-Type: application/x-www-form-urlencoded``
  and ``json`` into ``json_encode`` (flags 0) with ``Content-Type: application/json``.
  ``http_build_query`` (php-src ``ext/standard/http.c``, RFC 1738 encoding by default) writes
  ``urlencode()`` text (``+`` for a space, everything but ``A-Za-z0-9-_.`` as ``%XX``, so
  ``~`` too), nested keys as ``key%5Bsub%5D``, lists with their indexes, ``true``/``false`` as
  ``1``/``0``, and skips ``null`` and empty arrays.
- Drupal core's HTTP client (``core/lib/Drupal/Core/Http/ClientFactory.php``) sends
  ``User-Agent: Drupal/<version> (+https://www.drupal.org/) GuzzleHttp/7``.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, quote_plus

import requests

from tests.stand_ins.base import Answer, Request, StandIn
from tests.stand_ins.magento import php_json

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


# -- Webform's Remote post handler ----------------------------------------------------------------

# WebformSubmission::baseFieldDefinitions(), in order: the handler's default ``excluded_data``.
BASE_FIELDS = (
    "serial", "sid", "uuid", "token", "uri", "created", "completed", "changed", "in_draft",
    "current_page", "remote_addr", "uid", "langcode", "webform_id", "entity_type", "entity_id",
    "locked", "sticky", "notes",
)  # fmt: skip
STATES = ("completed", "updated", "deleted", "draft_created", "draft_updated", "converted")
USER_AGENT = "Drupal/10.3.6 (+https://www.drupal.org/) GuzzleHttp/7"


def php_urlencode(text: str) -> str:
    """PHP's ``urlencode()``: ``+`` for a space, all but ``A-Za-z0-9-_.`` percent-encoded."""
    return quote_plus(text, safe="").replace("~", "%7E")


def _php_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def http_build_query(data: Mapping[str, Any]) -> str:
    """PHP's ``http_build_query($data, '', '&')`` (RFC 1738), with Python data as PHP arrays.

    A dict is an associative array, a list a PHP list (keys 0 to n-1); ``None`` and empty
    arrays are left out, as PHP leaves out ``null`` and ``[]``.
    """
    parts: list[str] = []

    def walk(value: Any, key: str) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            items: Any = value.items()
        elif isinstance(value, list | tuple):
            items = enumerate(value)
        else:
            parts.append(f"{key}={php_urlencode(_php_scalar(value))}")
            return
        for sub, item in items:
            walk(item, f"{key}%5B{php_urlencode(str(sub))}%5D")

    for name, value in data.items():
        walk(value, php_urlencode(str(name)))
    return "&".join(parts)


@dataclass
class Submission:
    """A webform submission: its base fields and element values (``data``).

    Times are epoch seconds, as the base fields hold them; ``completed`` is empty for a draft.
    """

    webform_id: str
    data: dict[str, Any]
    sid: int = 17
    uuid: str = "0b5e4f4e-3f4e-4b7a-9d2b-5e9c6b1d2a10"
    created: int = 1767225600
    completed: int | str = 1767225600
    changed: int = 1767225600
    in_draft: bool = False
    remote_addr: str = "203.0.113.7"
    uid: int = 0
    langcode: str = "en"

    def to_array(self) -> dict[str, Any]:
        """``WebformSubmission::toArray(TRUE)``: base fields (``''`` when empty), then ``data``."""
        values: dict[str, Any] = {
            "serial": self.sid,
            "sid": self.sid,
            "uuid": self.uuid,
            "token": "k3yT0k3n",
            "uri": f"/form/{self.webform_id.replace('_', '-')}",
            "created": self.created,
            "completed": self.completed,
            "changed": self.changed,
            "in_draft": int(self.in_draft),
            "current_page": "",
            "remote_addr": self.remote_addr,
            "uid": self.uid,
            "langcode": self.langcode,
            "webform_id": self.webform_id,
            "entity_type": "",
            "entity_id": "",
            "locked": 0,
            "sticky": 0,
            "notes": "",
        }
        return values | {"data": self.data}


@dataclass
class RemotePostHandler:
    """One Remote post handler's settings, and the requests it makes of them.

    ``urls`` maps a state to its URL (a state without one posts nothing); ``included`` are the
    base fields ticked in *Submission data* (the default excludes all); ``headers`` are the
    ``custom_options`` headers.
    """

    urls: dict[str, str]
    type: str = "x-www-form-urlencoded"
    included: tuple[str, ...] = ()
    custom_data: dict[str, Any] = field(default_factory=dict)
    state_custom_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def request_data(self, state: str, submission: Submission) -> dict[str, Any]:
        """``getRequestData()``: element values, the included base fields, custom data."""
        values = submission.to_array()
        elements = values.pop("data")
        data = _union(elements, values)  # $element_data + $data
        excluded = set(BASE_FIELDS) - set(self.included)
        data = {k: v for k, v in data.items() if k not in excluded}
        data = _union(self.custom_data, data)
        return _union(self.state_custom_data.get(state, {}), data)

    def request(self, state: str, submission: Submission) -> tuple[bytes, dict[str, str]]:
        """The body and headers Guzzle sends for ``state`` (``form_params`` or ``json``)."""
        assert state in STATES, state
        data = self.request_data(state, submission)
        if self.type == "json":
            body, content_type = php_json(data), "application/json"
        else:
            body, content_type = (
                http_build_query(data).encode(),
                "application/x-www-form-urlencoded",
            )
        headers = {"User-Agent": USER_AGENT} | self.headers | {"Content-Type": content_type}
        return body, headers

    def post(self, state: str, submission: Submission) -> requests.Response | None:
        """What ``remotePost()`` does on a save or delete in ``state``: ``None`` without a URL."""
        url = self.urls.get(state)
        if not url:
            return None
        body, headers = self.request(state, submission)
        return requests.post(url, data=body, headers=headers, timeout=10)


def _union(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    """PHP's ``$left + $right``: left's keys first and winning, then right's others."""
    return dict(left) | {k: v for k, v in right.items() if k not in left}
