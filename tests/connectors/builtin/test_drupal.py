"""Drupal connector against the JSON:API stand-in, and Webform remote posts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from hub.integrations.pulls import start_run
from hub.runtime import Runtime
from tests.conftest import run_jobs
from tests.stand_ins.drupal import DrupalStandIn, user
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
