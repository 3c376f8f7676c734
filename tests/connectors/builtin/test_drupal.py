"""Drupal connector against the JSON:API stand-in, and Webform remote posts.

The Webform posts after the first few tests are made by :class:`RemotePostHandler`, which
writes each body as Webform 6.x and Guzzle write it, and go to the hub's real HTTP endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import select

from hub.facts import FactIn
from hub.facts.ingest import notify, store_facts
from hub.integrations.models import RefusedDelivery
from hub.integrations.pulls import start_run
from hub.models import ConsentEvent
from hub.runtime import Runtime
from tests.conftest import run_jobs
from tests.stand_ins.drupal import (
    BASE_FIELDS,
    STATES,
    DrupalStandIn,
    RemotePostHandler,
    Submission,
    http_build_query,
    user,
)
from tests.stand_ins.hub_helpers import (
    add_instance,
    cursor,
    fact_count,
    facts,
    profile_by_email,
    profile_by_external,
    run,
)

ONE_BACKEND = pytest.mark.parametrize("backend", ["embedded"])
SECRET = "webform-shared-secret"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def site() -> Iterator[DrupalStandIn]:
    with DrupalStandIn() as stand_in:
        yield stand_in  # type: ignore[misc]


@pytest.fixture
def rt(hub_runtime: Runtime, site: DrupalStandIn) -> Runtime:
    hub_runtime.settings = hub_runtime.settings.with_overrides(pull_retry_delays=(0,))
    add_instance(
        hub_runtime,
        "site",
        "drupal",
        base_url=site.url,
        username="hub",
        password="drupal-pass",
        webhook_secret=SECRET,
        page_size=2,
        timeout_seconds=1,
    )
    return hub_runtime


def test_pull_users_filtered_on_changed(rt: Runtime, site: DrupalStandIn) -> None:
    site.put(*(user(uid) for uid in range(1, 6)), user(9, changed=3))
    run_id = start_run(rt, "site", "users")
    run_jobs(rt)

    result = run(rt, run_id)
    assert result["status"] == "succeeded", result
    assert result["facts_accepted"] == 6
    profile = profile_by_external(rt, "drupal", "5")
    assert profile["email"] == "user5@example.org"
    assert profile["fields"]["drupal_status"] == "blocked"  # uid 5: status false
    assert profile["fields"]["drupal_roles"] == ["editor"]
    assert profile["fields"]["first_name"] == "Uma5" and profile["fields"]["language"] == "nl"
    first_changed = cursor(rt, "site", "users")

    site.put(user(2, changed=500))
    again = start_run(rt, "site", "users")
    run_jobs(rt)
    assert run(rt, again)["facts_accepted"] == 1
    assert int(cursor(rt, "site", "users")) > int(first_changed)
    last = [r for r in site.requests if r.path == "/jsonapi/user/user"][-1]
    assert last.arg("filter[since][condition][operator]") == ">="
    assert last.arg("filter[since][condition][path]") == "changed"


@ONE_BACKEND
def test_pull_with_wrong_password_fails(hub_runtime: Runtime, site: DrupalStandIn) -> None:
    add_instance(hub_runtime, "other", "drupal", base_url=site.url, username="hub", password="x")
    run_id = start_run(hub_runtime, "other", "users")
    run_jobs(hub_runtime)
    result = run(hub_runtime, run_id)
    assert result["status"] == "failed" and "HTTP 403" in result["error"]


def post(client: Any, body: bytes, content_type: str, state: str = "completed", **headers: str):
    headers = {"X-Hub-Secret": SECRET} | headers
    return client.post(
        f"/connectors/site/webhook?state={state}",
        data=body,
        headers={"Content-Type": content_type} | headers,
    )


def submission(**values: Any) -> dict[str, Any]:
    return {
        "sid": "17",
        "uuid": "0b5e4f4e-3f4e-4b7a-9d2b-5e9c6b1d2a10",
        "webform_id": "newsletter_signup",
        "created": "1767225600",
        "changed": "1767225600",
        "completed": "1767225600",
        "in_draft": "0",
        "email": "Lena@Example.org",
        "first_name": "Lena",
        "interests": ["news", "events"],
    } | values


def test_webform_form_encoded_submission(client: Any, rt: Runtime) -> None:
    data = submission()
    body = urlencode(
        [(k, v) for k, v in data.items() if k != "interests"]
        + [("interests[0]", "news"), ("interests[1]", "events")]
    ).encode()
    resp = post(client, body, FORM)
    assert resp.status_code == 200, resp.get_json()
    [fact] = facts(rt)
    assert fact.type == "form.submitted"
    assert fact.data["webform_id"] == "newsletter_signup" and fact.data["state"] == "completed"
    assert fact.data["values"]["interests"] == ["news", "events"]
    assert "sid" not in fact.data["values"]
    run_jobs(rt)
    assert profile_by_email(rt, "lena@example.org")["fields"]["first_name"] == "Lena"


@ONE_BACKEND
def test_webform_json_states_and_replays(client: Any, rt: Runtime) -> None:
    body = json.dumps(submission()).encode()
    assert post(client, body, "application/json").status_code == 200
    replay = post(client, body, "application/json")
    assert replay.get_json()["facts"][0]["status"] == "duplicate"
    updated = json.dumps(submission(changed="1767229200", first_name="Lena M.")).encode()
    assert post(client, updated, "application/json", state="updated").status_code == 200
    deleted = json.dumps(submission(changed="1767232800")).encode()
    assert post(client, deleted, "application/json", state="deleted").status_code == 200
    assert [(f.type, f.data["state"]) for f in facts(rt)] == [
        ("form.submitted", "completed"),
        ("form.submitted", "updated"),
        ("form.deleted", "deleted"),
    ]


@ONE_BACKEND
@pytest.mark.parametrize("secret", [None, "wrong", SECRET + " "])
def test_webform_secret_header(client: Any, rt: Runtime, secret: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Secret"] = secret
    resp = client.post(
        "/connectors/site/webhook", data=json.dumps(submission()).encode(), headers=headers
    )
    assert resp.status_code == 401
    assert fact_count(rt) == 0


@ONE_BACKEND
@pytest.mark.parametrize(
    ("body", "content_type", "state", "field"),
    [
        (json.dumps(submission(webform_id=None)).encode(), "application/json", "completed",
         "webform_id"),
        (json.dumps(submission(email="")).encode(), "application/json", "completed", "email"),
        (json.dumps(submission(email="nobody")).encode(), "application/json", "completed",
         "email"),
        (b"sid=1&email=a%40b.example", FORM, "completed", "webform_id"),
        (b"{", "application/json", "completed", ""),
        (json.dumps(submission()).encode(), "application/json", "archived", "state"),
    ],
)  # fmt: skip
def test_webform_malformed(
    client: Any, rt: Runtime, body: bytes, content_type: str, state: str, field: str
) -> None:
    resp = post(client, body, content_type, state=state)
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["field"] == field
    assert fact_count(rt) == 0


@ONE_BACKEND
def test_pushed_user_document_and_deletion(client: Any, rt: Runtime) -> None:
    doc = json.dumps({"data": user(12)}).encode()
    assert post(client, doc, "application/vnd.api+json").status_code == 200
    assert post(client, doc, "application/vnd.api+json", state="deleted").status_code == 200
    assert [f.type for f in facts(rt)] == ["profile.upserted", "profile.deleted"]
    assert facts(rt)[1].profile_ref["external_ids"] == {"drupal": "12"}


def test_test_connection_needs_the_right_password(site: DrupalStandIn) -> None:
    from connectors import RemoteRejected
    from connectors.builtin.drupal import DrupalConnector

    site.put(user(1))
    good = {"base_url": site.url, "username": "hub", "password": "drupal-pass"}
    assert "1 user read" in DrupalConnector("site", good).test_connection()
    with pytest.raises(RemoteRejected, match="HTTP 403"):
        DrupalConnector("site", good | {"password": "guess"}).test_connection()


# -- Webform posts as the Remote post handler makes them ------------------------------------------

CONSENT_TEXT = "Yes, send me the newsletter. I can unsubscribe at any time."
ADDRESS = {
    "address": "Oudegracht 12",
    "address_2": "",
    "city": "Utrecht",
    "state_province": "",
    "postal_code": "3511 AP",
    "country": "Netherlands",
}


@pytest.fixture
def forms(hub_runtime: Runtime) -> Runtime:
    """An instance for one webform, named in its settings, with a consent checkbox."""
    add_instance(
        hub_runtime,
        "forms",
        "drupal",
        base_url="http://127.0.0.1:9",
        webhook_secret=SECRET,
        webform_id="newsletter_signup",
        email_element="email",
        profile_elements="first_name,address.city,interests",
        consent_element="newsletter",
        consent_text=CONSENT_TEXT,
    )
    return hub_runtime


def handler(hub_url: str, instance: str = "forms", query: str = "", **settings: Any):
    """A Remote post handler with a URL for every state and the secret as a custom header."""
    urls = {s: f"{hub_url}/connectors/{instance}/webhook?state={s}{query}" for s in STATES}
    return RemotePostHandler(urls, headers={"X-Hub-Secret": SECRET}, **settings)


def signup(**values: Any) -> Submission:
    data = {
        "email": "Lena@Example.org",
        "first_name": "Lena",
        "address": dict(ADDRESS),
        "interests": ["news", "events"],
        "newsletter": 1,
    } | values
    return Submission("newsletter_signup", {k: v for k, v in data.items() if v is not None})


def ok(resp: requests.Response | None) -> dict[str, Any]:
    assert resp is not None and resp.status_code == 200, resp.text if resp else None
    return resp.json()


def ledger(rt: Runtime, profile_id: int) -> list[dict[str, Any]]:
    with rt.db.session() as s:
        rows = s.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.profile_id == profile_id)
            .order_by(ConsentEvent.id)
        )
        return [r.as_dict() for r in rows]


def refused(rt: Runtime) -> list[RefusedDelivery]:
    with rt.db.session() as s:
        return list(s.scalars(select(RefusedDelivery)))


def test_a_default_post_has_element_values_only(hub_url: str, forms: Runtime) -> None:
    post = handler(hub_url)
    body, headers = post.request("completed", signup())
    # what Guzzle sends for form_params: PHP's http_build_query, no base field at all
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert body.startswith(b"email=Lena%40Example.org&first_name=Lena&address%5Baddress%5D=")
    assert b"Oudegracht+12" in body and b"interests%5B1%5D=events" in body
    assert not any(f"{name}=".encode() in body for name in BASE_FIELDS)

    ok(post.post("completed", signup()))
    (fact,) = facts(forms)
    assert fact.type == "form.submitted"
    assert fact.data["webform_id"] == "newsletter_signup" == fact.data["form"]
    assert fact.data["state"] == "completed" and fact.data["submission_id"] is None
    run_jobs(forms)
    profile = profile_by_email(forms, "lena@example.org")
    assert profile is not None
    assert profile["fields"]["first_name"] == "Lena"
    assert profile["fields"]["address_city"] == "Utrecht"
    assert profile["fields"]["interests"] == ["news", "events"]


@ONE_BACKEND
@pytest.mark.parametrize("kind", ["x-www-form-urlencoded", "json"])
def test_composites_and_multiple_values_keep_their_structure(
    hub_url: str, forms: Runtime, kind: str
) -> None:
    values = {
        "address": dict(ADDRESS),  # a composite, blank parts included
        "addresses": [  # a multiple composite
            {"address": "Oudegracht 12", "city": "Utrecht", "postal_code": ""},
            {"address": "Rue de Rivoli 1", "city": "Paris", "postal_code": "75001"},
        ],
        "interests": ["news", "events"],  # checkboxes
        "phones": ["+31 30 123 4567"],  # a multiple textfield with one value
        "notes_to_us": "a & b = c; 100% ~ [x]",
        "newsletter": 0,
    }
    ok(handler(hub_url, type=kind).post("completed", signup(**values)))
    (fact,) = facts(forms)
    posted = fact.data["values"]
    for key, value in values.items():
        expected = str(value) if kind != "json" and isinstance(value, int) else value
        assert posted[key] == expected, key
    assert posted["email"] == "Lena@Example.org"


@ONE_BACKEND
def test_php_bracket_forms(hub_url: str, forms: Runtime) -> None:
    body = (
        b"email=a%40b.example&tags%5B%5D=a&tags%5B%5D=b&a%5Bb%5D%5Bc%5D="
        b"&m%5B1%5D=one&m%5B0%5D=zero&plain=x+y&flag"
    )
    resp = requests.post(
        f"{hub_url}/connectors/forms/webhook",
        data=body,
        headers={"Content-Type": FORM, "X-Hub-Secret": SECRET},
    )
    ok(resp)
    values = facts(forms)[0].data["values"]
    assert values["tags"] == ["a", "b"]  # [] appends
    assert values["a"] == {"b": {"c": ""}}  # blank values are kept
    assert values["m"] == {"1": "one", "0": "zero"}  # keys not 0..n-1 in order: an object
    assert values["plain"] == "x y" and values["flag"] == ""


@ONE_BACKEND
@pytest.mark.parametrize(
    ("state", "fact_type", "creates"),
    [
        ("completed", "form.submitted", True),
        ("updated", "form.submitted", True),
        ("converted", "form.submitted", True),
        ("draft_created", "form.draft", False),
        ("draft_updated", "form.draft", False),
        ("deleted", "form.deleted", False),
    ],
)
def test_each_state(
    hub_url: str, forms: Runtime, state: str, fact_type: str, creates: bool
) -> None:
    ok(handler(hub_url).post(state, signup(newsletter=0)))
    (fact,) = facts(forms)
    assert (fact.type, fact.data["state"]) == (fact_type, state)
    run_jobs(forms)
    assert (profile_by_email(forms, "lena@example.org") is not None) is creates


@ONE_BACKEND
def test_a_submissions_life_in_states(hub_url: str, forms: Runtime) -> None:
    post = handler(hub_url, included=("sid", "uuid", "changed", "completed"))
    draft = signup(newsletter=0)
    draft.completed, draft.in_draft = "", True
    ok(post.post("draft_created", draft))
    draft.changed += 60
    ok(post.post("draft_updated", draft))
    done = signup()
    done.changed += 120
    ok(post.post("completed", done))
    done.changed += 3600
    ok(post.post("updated", done))
    ok(post.post("converted", done))
    ok(post.post("deleted", done))
    assert [(f.type, f.data["state"]) for f in facts(forms)] == [
        ("form.draft", "draft_created"),
        ("form.draft", "draft_updated"),
        ("form.submitted", "completed"),
        ("form.submitted", "updated"),
        ("form.submitted", "converted"),
        ("form.deleted", "deleted"),
    ]
    assert {f.data["submission_id"] for f in facts(forms)} == {"17"}
    assert facts(forms)[2].occurred_at == datetime.fromtimestamp(done.changed - 3600, UTC)


@ONE_BACKEND
def test_the_webform_from_the_url_or_the_settings(hub_url: str, hub_runtime: Runtime) -> None:
    add_instance(hub_runtime, "plain", "drupal", base_url="http://x.example", webhook_secret=SECRET)
    add_instance(hub_runtime, "forms", "drupal", base_url="http://x.example",
                 webhook_secret=SECRET, webform_id="from_settings")  # fmt: skip
    ok(handler(hub_url, "plain", "&webform=from_url").post("completed", signup()))
    ok(handler(hub_url, "forms").post("completed", signup()))
    ok(handler(hub_url, "forms", "&webform=contact").post("completed", signup()))  # URL first
    # the handler includes the webform_id base field: the posted one is the truth
    ok(handler(hub_url, "forms", "&webform=contact", included=("webform_id",)).post(
        "completed", signup()
    ))  # fmt: skip
    assert [f.data["webform_id"] for f in facts(hub_runtime)] == [
        "from_url", "from_settings", "contact", "newsletter_signup"
    ]  # fmt: skip

    # neither: refused, and the operator is told what to set
    resp = handler(hub_url, "plain").post("completed", signup())
    assert resp is not None and resp.status_code == 400
    assert resp.json()["field"] == "webform_id"
    assert "?webform=" in resp.json()["message"] and "settings" in resp.json()["message"]


@ONE_BACKEND
def test_deduplication_without_and_with_the_ids(hub_url: str, forms: Runtime) -> None:
    default = handler(hub_url)
    first = ok(default.post("completed", signup()))
    again = ok(default.post("completed", signup()))  # a replay: the same body
    assert again["facts"] == [{"id": first["facts"][0]["id"], "status": "duplicate"}]
    ok(default.post("completed", signup(first_name="Lena M.")))  # other values: another fact
    assert len(facts(forms)) == 2

    exact = handler(hub_url, included=("sid", "uuid", "changed"))
    one = signup()
    ok(exact.post("completed", one))
    key = "forms:webform:newsletter_signup:17:completed:1767225600"
    assert facts(forms)[-1].source_id == key
    # the same submission and version: a duplicate whatever else differs (custom data)
    exact.custom_data = {"campaign": "spring"}
    assert ok(exact.post("completed", one))["facts"][0]["status"] == "duplicate"
    one.changed += 1
    assert ok(exact.post("updated", one))["facts"][0]["status"] == "accepted"
    assert len(facts(forms)) == 4


def test_a_ticked_box_is_an_explicit_opt_in(hub_url: str, forms: Runtime) -> None:
    post = handler(hub_url, included=("completed", "remote_addr"))
    ok(post.post("completed", signup(email="ann@example.com", newsletter=0)))
    run_jobs(forms)
    ann = profile_by_email(forms, "ann@example.com")
    assert ann is not None and ann["status"] == "unconfirmed"  # unticked: no statement
    assert ledger(forms, ann["id"]) == []

    ok(post.post("completed", signup()))
    run_jobs(forms)
    lena = profile_by_email(forms, "lena@example.org")
    assert lena is not None and lena["status"] == "subscribed"
    (entry,) = ledger(forms, lena["id"])
    assert entry["stated"] == "subscribed" and entry["explicit"] is True
    assert entry["proof"] == CONSENT_TEXT and entry["source"] == "drupal"
    assert entry["ip"] == "203.0.113.7"
    assert entry["stated_at"] == datetime.fromtimestamp(1767225600, UTC).isoformat()
    assert entry["evidence"]["webform_id"] == "newsletter_signup"
    assert entry["evidence"]["element"] == "newsletter"


@ONE_BACKEND
def test_a_ticked_box_subscribes_again_but_an_unticked_one_never_unsubscribes(
    hub_url: str, forms: Runtime
) -> None:
    store_facts(forms.db, [FactIn(type="profile.upserted", source="api", profile={
        "email": "lena@example.org",
        "consent": {"status": "unsubscribed", "proof": "unsubscribe link"},
    })])  # fmt: skip
    notify(forms.settings, forms.redis)
    run_jobs(forms)
    assert profile_by_email(forms, "lena@example.org")["status"] == "unsubscribed"

    post = handler(hub_url)
    ok(post.post("updated", signup()))  # the same submission saved again: no opt-in just now
    ok(post.post("draft_updated", signup(first_name="L.")))  # a draft says nothing
    run_jobs(forms)
    profile = profile_by_email(forms, "lena@example.org")
    assert profile["status"] == "unsubscribed"
    assert [(e["explicit"], e["outcome"]) for e in ledger(forms, profile["id"])][1:] == [
        (False, "ignored")
    ]

    ok(post.post("completed", signup()))  # ticked and sent: an explicit opt-in
    run_jobs(forms)
    assert profile_by_email(forms, "lena@example.org")["status"] == "subscribed"

    ok(post.post("completed", signup(newsletter=0, first_name="Lena")))  # unticked later
    run_jobs(forms)
    assert profile_by_email(forms, "lena@example.org")["status"] == "subscribed"


@ONE_BACKEND
@pytest.mark.parametrize("value", ["1", "on", "yes", "true", True])
def test_ticked_values_in_json(hub_url: str, forms: Runtime, value: Any) -> None:
    ok(handler(hub_url, type="json").post("completed", signup(newsletter=value)))
    run_jobs(forms)
    assert profile_by_email(forms, "lena@example.org")["status"] == "subscribed"


@ONE_BACKEND
@pytest.mark.parametrize("tamper", ["unsigned", "wrong", "case"])
def test_unsigned_and_forged_posts_store_nothing(hub_url: str, forms: Runtime, tamper: str) -> None:
    headers = {} if tamper == "unsigned" else {"X-Hub-Secret": "guess" if tamper == "wrong"
                                               else SECRET.upper()}  # fmt: skip
    post = handler(hub_url)
    post.headers = headers
    resp = post.post("completed", signup())
    assert resp is not None and resp.status_code == 401
    assert fact_count(forms) == 0 and refused(forms) == []


def _deep(levels: int) -> bytes:
    return b"email=a%40b.example&deep" + b"%5Bx%5D" * levels + b"=1"


@ONE_BACKEND
@pytest.mark.parametrize(
    ("body", "query", "field"),
    [
        (http_build_query({"first_name": "No email"}).encode(), "", "email"),
        (b"", "", ""),
        (b"email=a%40b.example&first_name=%FF%FE", "", "first_name"),
        (_deep(9), "", "deep"),
        (b"email=a%40b.example&" + b"&".join(b"f%d=x" % n for n in range(1001)), "", "f999"),
        (b"email=a%40b.example", "webform=no%20spaces", "webform"),
        (b"email=a%40b.example", "state=archived", "state"),
        (b"email=not-an-address", "", "email"),
    ],
)
def test_malformed_posts_are_400_naming_the_field(
    hub_url: str, forms: Runtime, body: bytes, query: str, field: str
) -> None:
    resp = requests.post(
        f"{hub_url}/connectors/forms/webhook?{query or 'state=completed'}",
        data=body,
        headers={"Content-Type": FORM, "X-Hub-Secret": SECRET},
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["field"] == field
    assert fact_count(forms) == 0
    (kept,) = refused(forms)
    assert kept.body == body


@ONE_BACKEND
def test_eight_levels_are_fine(hub_url: str, forms: Runtime) -> None:
    resp = requests.post(
        f"{hub_url}/connectors/forms/webhook",
        data=_deep(8),
        headers={"Content-Type": FORM, "X-Hub-Secret": SECRET},
    )
    ok(resp)
