"""Drupal: user accounts over JSON:API, and Webform submissions from the Remote post handler.

Users (``/jsonapi/user/user``, filtered on ``changed``) become ``profile.upserted`` facts with
the external id ``drupal: <uid>``; a pushed user document with ``?state=deleted`` becomes
``profile.deleted``.

A Webform "Remote post" handler posts a submission (form-encoded or JSON element values plus
``webform_id``, ``sid``, ``changed``...) to one URL per state; point them at
``/connectors/<instance>/webhook?state=completed`` (``updated``, ``deleted``) and add the
shared secret as a custom header. Completed and updated submissions become ``form.submitted``
facts (``data.state`` says which), deleted ones ``form.deleted``; the profile is found or made
by the email element.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from connectors.base import ConfigField, Connector, ContractExample, FieldKind, Page, WebhookRequest
from connectors.builtin._util import as_dict, as_list, compact, make_fact, parse_time
from connectors.builtin._util import require as need
from connectors.exceptions import NotSupported, PayloadInvalid, SignatureInvalid
from connectors.http import RemoteClient
from hub.facts import FactIn

STATES = ("completed", "updated", "deleted")
USERS_PATH = "jsonapi/user/user"
_BRACKETS = re.compile(r"^([^\[]+)((?:\[[^\]]*\])+)$")


class DrupalConnector(Connector):
    """Drupal site: users (JSON:API pull or push) and Webform remote posts."""

    name = "drupal"
    title = "Drupal (users, Webform)"
    streams = ("users",)
    config_fields = (
        ConfigField("base_url", FieldKind.URL, required=True, help="site URL"),
        ConfigField("username", help="account allowed to read users over JSON:API"),
        ConfigField("password", secret=True),
        ConfigField("access_token", secret=True, help="OAuth bearer token instead of a password"),
        ConfigField("webhook_secret", secret=True, help="shared secret the site sends in a header"),
        ConfigField("webhook_header", default="X-Hub-Secret", help="header carrying the secret"),
        ConfigField("email_element", default="email", help="webform element holding the email"),
        ConfigField(
            "profile_elements",
            default="first_name,last_name",
            help="webform elements copied onto the profile (comma-separated)",
        ),
        ConfigField("page_size", FieldKind.INTEGER, default=50, minimum=1),
        ConfigField("timeout_seconds", FieldKind.NUMBER, default=30.0, minimum=0.1),
        ConfigField("max_inline_wait", FieldKind.NUMBER, default=5.0, minimum=0),
    )

    # -- push ----------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Compare the ``webhook_header`` header with ``webhook_secret``, in constant time."""
        secret = self.config["webhook_secret"]
        if not secret:
            raise SignatureInvalid("no webhook secret is configured for this instance")
        given = request.header(self.config["webhook_header"])
        if given is None:
            raise SignatureInvalid(f"missing {self.config['webhook_header']} header")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise SignatureInvalid(f"wrong {self.config['webhook_header']} header")

    def parse(self, request: WebhookRequest) -> list[FactIn]:
        """A pushed user document as a profile fact, or a Webform submission as a form fact.

        The ``?state=`` query (``completed``, ``updated`` or ``deleted``) says what happened; a
        submission may be form-encoded or JSON.
        """
        state = request.query.get("state", "completed")
        if state not in STATES:
            raise PayloadInvalid("state", f"{state!r} is not one of {', '.join(STATES)}")
        if request.content_type == "application/x-www-form-urlencoded":
            body = form_values(request.body)
        else:
            body = as_dict(request.json(), "")
        document = body.get("data")
        if isinstance(document, dict) and str(document.get("type", "")).startswith("user--"):
            fact = self.user_fact(document, "data")
            if state == "deleted":
                fact = fact.model_copy(
                    update={"type": "profile.deleted", "source_id": f"{fact.source_id}:deleted"}
                )
            return [fact]
        return [self.submission_fact(body, state, request.body)]

    # -- pull ----------------------------------------------------------------------------

    def client(self) -> RemoteClient:
        """A JSON:API client: bearer token if one is set, else user name and password if given."""
        client = RemoteClient(
            self.config["base_url"],
            timeout=self.config["timeout_seconds"],
            max_inline_wait=self.config["max_inline_wait"],
        )
        client.session.headers["Accept"] = "application/vnd.api+json"
        if self.config["access_token"]:
            client.session.headers["Authorization"] = f"Bearer {self.config['access_token']}"
        elif self.config["username"]:
            client.session.auth = (self.config["username"], self.config["password"] or "")
        return client

    def pull(self, stream: str, cursor: str | None) -> Iterator[Page]:
        """Pages of users changed since ``cursor`` (epoch seconds of ``changed``); stream ``users``.

        Accounts without an email address (the anonymous user among them) give no fact.
        """
        if stream != "users":
            raise NotSupported(f"drupal has no stream {stream!r} (streams: users)")
        client, size = self.client(), self.config["page_size"]
        since, offset = cursor, 0
        while True:
            body = as_dict(client.get_json(USERS_PATH, params=user_query(since, offset, size)), "")
            items = as_list(body.get("data") or [], "data")
            facts = []
            last = since
            for n, item in enumerate(items):
                item = as_dict(item, f"data.{n}")
                attrs = as_dict(item.get("attributes") or {}, f"data.{n}.attributes")
                changed = need(attrs, "changed", f"data.{n}.attributes")
                last = str(int(parse_time(changed, f"data.{n}.attributes.changed").timestamp()))
                if attrs.get("mail"):  # the anonymous user and mail-less accounts: no contact
                    facts.append(self.user_fact(item, f"data.{n}"))
            if not items:
                return
            has_next = bool((body.get("links") or {}).get("next"))
            if last == since:
                offset += len(items)  # a full page of one second: step through it
            else:
                since, offset = last, 0
            yield Page(facts, since)
            if not has_next or len(items) < size:
                return

    def test_connection(self) -> str:
        """Read one user over JSON:API with the configured credentials."""
        body = self.client().get_json(USERS_PATH, params={"page[limit]": 1})
        return f"connected to {self.config['base_url']}: {len(body.get('data') or [])} user read"

    # -- mapping -------------------------------------------------------------------------

    def user_fact(self, doc: dict[str, Any], path: str) -> FactIn:
        """A ``profile.upserted`` fact from a JSON:API user document at ``path`` (for errors)."""
        attrs = as_dict(need(doc, "attributes", path), f"{path}.attributes")
        uid = attrs.get("drupal_internal__uid")
        if uid is None:
            raise PayloadInvalid(f"{path}.attributes.drupal_internal__uid", "is required")
        mail = need(attrs, "mail", f"{path}.attributes")
        changed = need(attrs, "changed", f"{path}.attributes")
        when = parse_time(changed, f"{path}.attributes.changed")
        roles = [
            (r.get("meta") or {}).get("drupal_internal__target_id") or r.get("id")
            for r in ((doc.get("relationships") or {}).get("roles") or {}).get("data") or []
            if isinstance(r, dict)
        ]
        fields = compact(
            {
                "drupal_name": attrs.get("name") or attrs.get("display_name"),
                "drupal_status": None
                if attrs.get("status") is None
                else ("active" if attrs.get("status") else "blocked"),
                "language": attrs.get("langcode"),
                "drupal_roles": roles or None,
                "drupal_created_at": attrs.get("created"),
            }
        )
        for key, value in attrs.items():
            if key.startswith("field_") and not isinstance(value, dict | list):
                fields[key.removeprefix("field_")] = value
        return make_fact(
            {"profile.email": f"{path}.attributes.mail"},
            type="profile.upserted",
            source=self.name,
            source_id=f"{self.instance}:user:{uid}:{int(when.timestamp())}",
            occurred_at=when,
            profile={"email": mail, "external_ids": {"drupal": str(uid)}, "fields": fields},
            data={"instance": self.instance, "uid": str(uid), "uuid": doc.get("id")},
        )

    def submission_fact(self, body: dict[str, Any], state: str, raw: bytes) -> FactIn:
        """A ``form.submitted`` (or ``form.deleted``) fact from a submission's values.

        The profile is the one of the email element. ``raw``, the body as sent, tells deliveries
        apart when the submission carries no ``changed`` time or no ids.
        """
        webform = need(body, "webform_id", "")
        element = self.config["email_element"]
        email = need(body, element, "")
        sid = body.get("sid") or body.get("uuid")
        version = body.get("changed") or body.get("completed") or ""
        if sid:  # a change without a ``changed`` time is told apart by its content
            key = f"{webform}:{sid}:{state}:{version or hashlib.sha256(raw).hexdigest()[:16]}"
        else:  # the handler excluded the ids: the content is what identifies a delivery
            key = f"{webform}:{state}:{hashlib.sha256(raw).hexdigest()[:32]}"
        names = [n.strip() for n in self.config["profile_elements"].split(",") if n.strip()]
        fields = compact({n: body.get(n) for n in names if isinstance(body.get(n), str | int)})
        when = parse_time(version, "changed") if version else None
        return make_fact(
            {"profile.email": element, "occurred_at": "changed"},
            type="form.deleted" if state == "deleted" else "form.submitted",
            source=self.name,
            source_id=f"{self.instance}:webform:{key}"[:255],
            occurred_at=when,
            profile={"email": email, "fields": fields},
            data={
                "instance": self.instance,
                "webform_id": str(webform),
                "submission_id": str(sid) if sid else None,
                "state": state,
                "values": {k: v for k, v in body.items() if k not in _SUBMISSION_KEYS},
            },
        )

    @classmethod
    def contract_example(cls) -> ContractExample:
        """A JSON and a form-encoded submission with the shared secret, and malformed bodies."""
        config = {"base_url": "http://127.0.0.1:9", "webhook_secret": "contract-secret-123"}

        def sign(body: bytes, content_type: str = "application/json") -> WebhookRequest:
            headers = {"X-Hub-Secret": config["webhook_secret"], "Content-Type": content_type}
            return WebhookRequest(body, headers)

        body = b'{"webform_id":"contact","sid":"4","email":"bo@example.com","first_name":"Bo"}'
        form = b"webform_id=newsletter&sid=5&email=cy%40example.com&topics%5B0%5D=news"
        return ContractExample(
            config=config,
            sign=sign,
            webhooks=[sign(body), sign(form, "application/x-www-form-urlencoded")],
            malformed=[(b"[1, 2", "application/json"), (b'{"sid": "1"}', "application/json")],
        )


_SUBMISSION_KEYS = {
    "serial", "sid", "uuid", "token", "uri", "created", "completed", "changed", "in_draft",
    "current_page", "remote_addr", "uid", "langcode", "webform_id", "entity_type", "entity_id",
    "locked", "sticky", "notes", "metatag",
}  # fmt: skip


def user_query(since: str | None, offset: int, size: int) -> dict[str, str | int]:
    """JSON:API query: users changed at or after ``since`` (epoch seconds), oldest first."""
    params: dict[str, str | int] = {
        "sort": "changed,drupal_internal__uid",
        "page[limit]": size,
        "page[offset]": offset,
    }
    if since:
        params.update(
            {
                "filter[since][condition][path]": "changed",
                "filter[since][condition][operator]": ">=",
                "filter[since][condition][value]": since,
            }
        )
    return params


def form_values(body: bytes) -> dict[str, Any]:
    """A form-encoded body as Drupal sends nested values: ``a[0]=x&a[1]=y`` becomes a list."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise PayloadInvalid("", "form body is not UTF-8") from None
    out: dict[str, Any] = {}
    for key, value in pairs:
        match = _BRACKETS.match(key)
        if not match:
            out[key] = value
            continue
        name, rest = match.group(1), match.group(2)
        sub = rest[1:-1].split("][")[0]
        if sub.isdigit() or sub == "":
            bucket = out.setdefault(name, [])
            if isinstance(bucket, list):
                bucket.append(value)
        else:
            bucket = out.setdefault(name, {})
            if isinstance(bucket, dict):
                bucket[sub] = value
    return out
