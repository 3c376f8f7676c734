"""Drupal: user accounts over JSON:API, and Webform submissions from the Remote post handler.

Users (``/jsonapi/user/user``, filtered on ``changed``) become ``profile.upserted`` facts with
the external id ``drupal: <uid>``; a pushed user document with ``?state=deleted`` becomes
``profile.deleted``. Users state no marketing consent: a profile they create is
``unconfirmed``.

**Webform "Remote post" handler** (Webform 6.x ``RemotePostWebformHandler``; see
``tests/stand_ins/drupal.py`` for what it sends, byte for byte). One handler has a URL per
submission state; point each at ``/connectors/<instance>/webhook?state=<state>`` (the handler
itself says nothing of the state in the body). The states:

======================== ====================================================================
``completed``            ``form.submitted`` (``data.state`` completed)
``updated``              ``form.submitted`` (``data.state`` updated): the submission was saved
                         again, by its author or an administrator
``converted``            ``form.submitted`` (``data.state`` converted): an anonymous submission
                         became a user's on login; the same submission, so a rule that must
                         run once per submission filters on ``data.state: completed``
``draft_created``,       ``form.draft`` (``data.state`` says which): no ``form.submitted``, so
``draft_updated``        a "thank you" rule does not fire on a draft; it makes no profile
``deleted``              ``form.deleted``: it makes no profile either
======================== ====================================================================

The body is what Guzzle makes of the handler's data: ``form_params`` by default, which is PHP's
``http_build_query`` (``application/x-www-form-urlencoded``, composites and multiple values in
bracket form, ``addresses[0][city]=…``), or ``json`` (``json_encode``). A form body is decoded
into nested data as PHP decodes ``$_POST`` (:func:`php_form`); a JSON body keeps its structure.

By default the handler excludes *every* submission base field (``excluded_data`` is the list
of ``webform_submission`` base fields), so a default post carries element values only: no
``webform_id``, ``sid``, ``uuid`` or ``changed``. Such a post is taken:

- the webform is the posted ``webform_id`` if the handler includes it, else the URL's
  ``?webform=<machine name>``, else the instance's ``webform_id`` setting;
- the idempotency key is the post's content (a hash of the body, with the state): a replayed
  post is a duplicate, and two posts of identical values for one webform and state are one
  fact. Include the base fields ``sid`` (or ``uuid``) and ``changed`` in the handler's
  *Submission data* for exact deduplication (a key of submission and version).

The profile is found or made by the ``email_element``'s value (a dotted path reaches into a
composite: ``contact.email``); ``profile_elements`` are copied onto the profile.

**Consent** (``consent_element``, ``consent_text``): the value of a checkbox element ticked
(``1``, ``true``, ``on``, ``yes``) in a ``completed`` post states ``subscribed``, **explicit**:
the contact ticked the box and sent the form just now, which is an opt-in that may subscribe
again a profile that unsubscribed. The proof is ``consent_text`` (the exact text shown next to
the box) or ``webform <id> element <name> ticked``; the time is the posted ``completed`` (or
``changed``), the IP the posted ``remote_addr``, when the handler includes them. In an
``updated`` or ``converted`` post a ticked box states ``subscribed`` too, but not explicit (the
same submission saved again, perhaps by an administrator: it gives consent to an unconfirmed
profile only). Drafts and deletions state nothing, and an unticked box states nothing: it is
never an unsubscribe.

The handler authenticates with a shared secret sent as a custom header (its *Custom options*:
``headers: {X-Hub-Secret: …}``), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from typing import Any

from connectors.base import ConfigField, Connector, ContractExample, FieldKind, Page, WebhookRequest
from connectors.builtin._php import MAX_NESTING, php_form
from connectors.builtin._util import as_dict, as_list, compact, make_fact, parse_time
from connectors.builtin._util import require as need
from connectors.exceptions import ConfigProblem, NotSupported, PayloadInvalid, SignatureInvalid
from connectors.http import RemoteClient
from hub.facts import FactIn

FORM = "application/x-www-form-urlencoded"
# Webform's submission states with a URL of their own (WebformSubmissionInterface::STATE_*).
STATES = ("completed", "updated", "deleted", "draft_created", "draft_updated", "converted")
FACT_TYPES = {
    "completed": "form.submitted",
    "updated": "form.submitted",
    "converted": "form.submitted",
    "draft_created": "form.draft",
    "draft_updated": "form.draft",
    "deleted": "form.deleted",
}
# States whose ticked consent box states consent; only a completed form is an explicit opt-in.
CONSENT_STATES = ("completed", "updated", "converted")
TICKED = frozenset({"1", "true", "on", "yes"})
USERS_PATH = "jsonapi/user/user"
_WEBFORM_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
# Webform submission base fields (WebformSubmission::baseFieldDefinitions): not element values.
BASE_FIELDS = (
    "serial", "sid", "uuid", "token", "uri", "created", "completed", "changed", "in_draft",
    "current_page", "remote_addr", "uid", "langcode", "webform_id", "entity_type", "entity_id",
    "locked", "sticky", "notes", "metatag",
)  # fmt: skip
WEBFORM_ID_HELP = (
    "is required: a Remote post handler posts element values only unless its submission data "
    "includes the Webform base field; set webform_id in the instance's settings, or add "
    "?webform=<webform machine name> to the handler's URLs"
)


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
        ConfigField(
            "webform_id",
            default="",
            help="machine name of the webform whose handler posts here, for posts that do not "
            "include the webform_id base field (the handler's default); ?webform= in the "
            "handler's URL takes precedence",
        ),
        ConfigField(
            "email_element",
            default="email",
            help="webform element holding the email (a dotted path into a composite: "
            "contact.email)",
        ),
        ConfigField(
            "profile_elements",
            default="first_name,last_name",
            help="webform elements copied onto the profile (comma-separated; address.city "
            "becomes the field address_city)",
        ),
        ConfigField(
            "consent_element",
            default="",
            help="checkbox element by which the contact opts in to marketing mail; ticked in "
            "a completed submission, it is an explicit opt-in",
        ),
        ConfigField(
            "consent_text",
            FieldKind.TEXT,
            default="",
            help="the exact text shown with the consent checkbox, kept as the proof",
        ),
        ConfigField("page_size", FieldKind.INTEGER, default=50, minimum=1),
        ConfigField("timeout_seconds", FieldKind.NUMBER, default=30.0, minimum=0.1),
        ConfigField("max_inline_wait", FieldKind.NUMBER, default=5.0, minimum=0),
    )

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[ConfigProblem]:
        """A machine name in ``webform_id``; ``consent_text`` only with a ``consent_element``."""
        problems = []
        if config["webform_id"] and not _WEBFORM_ID.match(config["webform_id"]):
            problems.append(ConfigProblem("webform_id", "is not a webform machine name"))
        if config["consent_text"]:
            if not config["consent_element"]:
                problems.append(
                    ConfigProblem("consent_text", "needs consent_element: the box it belongs to")
                )
            if len(config["consent_text"]) > 2000:
                problems.append(ConfigProblem("consent_text", "at most 2000 characters"))
        return problems

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

        The ``?state=`` query (one of :data:`STATES`, ``completed`` if absent) says what
        happened; a submission is form-encoded (the handler's default) or JSON.
        """
        state = request.query.get("state") or "completed"
        if state not in STATES:
            raise PayloadInvalid("state", f"{state!r} is not one of {', '.join(STATES)}")
        if not request.body.strip():
            raise PayloadInvalid(
                "", "the body is empty: a Remote post handler posts the submission's values"
            )
        if request.content_type == FORM:
            body = php_form(request.body)
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
        return [self.submission_fact(body, state, request)]

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

    def submission_fact(self, body: dict[str, Any], state: str, request: WebhookRequest) -> FactIn:
        """The fact of one Webform post (see the module docstring for states and consent).

        ``request`` gives the URL's ``?webform=`` and the raw body, whose hash identifies a post
        that carries no submission id or version.
        """
        webform = self.webform_of(body, request.query)
        element = self.config["email_element"]
        email = lookup(body, element)
        if email is None or email == "":
            raise PayloadInvalid(
                element,
                f"is required: the post has no value for the email element {element!r} (set "
                "email_element to the key of the webform's email element)",
            )
        if not isinstance(email, str):
            raise PayloadInvalid(element, "expected an email address")
        sid = _text(body.get("sid")) or _text(body.get("uuid"))
        changed, completed = _text(body.get("changed")), _text(body.get("completed"))
        version = changed or completed
        if sid and version:  # the handler includes the ids: the key is exact
            key = f"{webform}:{sid}:{state}:{version}"
        elif sid:  # a change without a ``changed`` time is told apart by its content
            key = f"{webform}:{sid}:{state}:{_digest(request.body)[:16]}"
        else:  # the handler's default: the content is what identifies a delivery
            key = f"{webform}:{state}:{_digest(request.body)[:32]}"
        when = None
        if state != "deleted" and version:  # a deletion happens now, not at the last save
            when = parse_time(version, "changed" if changed else "completed")
        profile: dict[str, Any] = {"email": email, "fields": self.profile_fields(body)}
        consent = self.consent(body, webform, state, sid)
        if consent is not None:
            profile["consent"] = consent
        if FACT_TYPES[state] != "form.submitted":  # a draft or a deletion makes nobody
            profile["create"] = False
        return make_fact(
            {
                "profile.email": element,
                "occurred_at": "changed",
                "profile.consent": self.config["consent_element"] or "consent",
            },
            type=FACT_TYPES[state],
            source=self.name,
            source_id=f"{self.instance}:webform:{key}"[:255],
            occurred_at=when,
            profile=profile,
            data={
                "instance": self.instance,
                "form": webform,
                "webform_id": webform,
                "submission_id": sid,
                "state": state,
                "values": {k: v for k, v in body.items() if k not in BASE_FIELDS},
            },
        )

    def webform_of(self, body: dict[str, Any], query: Mapping[str, str]) -> str:
        """The webform's machine name: posted ``webform_id``, else ``?webform=``, else config."""
        for where, value in (
            ("webform_id", body.get("webform_id")),
            ("webform", query.get("webform")),
            ("webform_id", self.config["webform_id"]),
        ):
            if value is None or value == "":
                continue
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise PayloadInvalid(where, "is not a webform machine name")
            if not _WEBFORM_ID.match(str(value)):
                raise PayloadInvalid(where, "is not a webform machine name")
            return str(value)
        raise PayloadInvalid("webform_id", WEBFORM_ID_HELP)

    def profile_fields(self, body: dict[str, Any]) -> dict[str, Any]:
        """The ``profile_elements`` posted with a value; an empty element sets nothing."""
        fields: dict[str, Any] = {}
        for name in (n.strip() for n in self.config["profile_elements"].split(",")):
            value = lookup(body, name) if name else None
            if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
                fields[name.replace(".", "_")] = value  # checkboxes, a multiple value
            elif isinstance(value, str | int | float | bool) and value != "":
                fields[name.replace(".", "_")] = value
        return fields

    def consent(
        self, body: dict[str, Any], webform: str, state: str, sid: str | None
    ) -> dict[str, Any] | None:
        """The statement of a ticked ``consent_element``; ``None`` for anything else.

        An unticked box states nothing (never an unsubscribe); see the module docstring for
        which states state consent and which of them explicitly.
        """
        name = self.config["consent_element"]
        if not name or state not in CONSENT_STATES:
            return None
        value = lookup(body, name)
        if not _ticked(value):
            return None
        completed, changed = _text(body.get("completed")), _text(body.get("changed"))
        at = None
        if completed or changed:
            at = parse_time(completed or changed, "completed" if completed else "changed")
        ip = _text(body.get("remote_addr"))
        return {
            "status": "subscribed",
            "explicit": state == "completed",
            "proof": self.config["consent_text"] or f"webform {webform} element {name} ticked",
            "at": at,
            "ip": ip if ip and len(ip) <= 64 else None,
            "evidence": compact(
                {
                    "webform_id": webform,
                    "element": name,
                    "value": str(value),
                    "state": state,
                    "submission_id": sid,
                }
            ),
        }

    @classmethod
    def contract_example(cls) -> ContractExample:
        """Posts as the handler sends them (JSON with base fields, default form posts)."""
        config = {"base_url": "http://127.0.0.1:9", "webhook_secret": "contract-secret-123"}

        def sign(
            body: bytes, content_type: str = "application/json", **query: str
        ) -> WebhookRequest:
            headers = {"X-Hub-Secret": config["webhook_secret"], "Content-Type": content_type}
            return WebhookRequest(body, headers, query)

        body = (
            b'{"email":"bo@example.com","first_name":"Bo","sid":4,"uuid":'
            b'"7f1c1e0e-3a44-4d7e-9a57-4b1b7f0e2c11","changed":1767225600,'
            b'"webform_id":"contact"}'
        )
        # a default post: element values only (no base field), the webform named in the URL
        default = (
            b"email=cy%40example.com&first_name=Cy&address%5Baddress%5D=1+Main+St"
            b"&address%5Bcity%5D=Utrecht&address%5Bpostal_code%5D=&topics%5B0%5D=news"
            b"&topics%5B1%5D=events"
        )
        deep = b"email=a%40b.example&" + b"x" + b"%5Ba%5D" * (MAX_NESTING + 1) + b"=1"
        return ContractExample(
            config=config,
            sign=sign,
            webhooks=[
                sign(body),
                sign(default, FORM, webform="newsletter"),
                sign(default, FORM, webform="newsletter", state="draft_updated"),
            ],
            malformed=[
                (b"[1, 2", "application/json"),
                (b'{"sid": "1", "webform_id": "contact"}', "application/json"),  # no email
                (b"email=cy%40example.com", FORM),  # no webform id anywhere
                (b"webform_id=contact&email=%FF%FE", FORM),  # not UTF-8
                (b"webform_id=contact&" + deep, FORM),  # nested too deeply
                (b"", FORM),  # empty
            ],
        )


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


def lookup(body: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` (``contact.email``, ``addresses.0.city``); ``None``."""
    value: Any = body
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _ticked(value: Any) -> bool:
    """A checkbox's value when ticked: ``1``/``true``/``on``/``yes`` (text, number, boolean)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in TICKED


def _text(value: Any) -> str | None:
    """A base field's value as text (``sid`` 4 or ``"4"``); ``None`` for absent or empty."""
    if value is None or value == "" or isinstance(value, bool | dict | list):
        return None
    return str(value)


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
