"""REST /api/v1/profiles: the SOAP operations as JSON, same service, same errors."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from hub import runtime
from hub.models import Fact, Profile, RuleFiring
from tests.conftest import run_jobs

URL = "/api/v1/profiles"


def count(app: Any, model: Any) -> int:
    with runtime.of(app).db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_profile_lifecycle(client: Any, auth: dict, app: Any) -> None:
    created = client.post(
        URL, json={"email": "Ann@Example.com", "fields": {"age": 41}}, headers=auth
    )
    assert created.status_code == 201
    pid = created.json["id"]
    assert client.get(f"{URL}/{pid}", headers=auth).json == created.json
    assert client.get(f"{URL}?email=ANN@example.com", headers=auth).json["id"] == pid

    patched = client.patch(f"{URL}/{pid}", json={"fields": {"city": "Delft"}}, headers=auth)
    assert patched.json["fields"] == {"age": 41, "city": "Delft"}
    tagged = client.post(f"{URL}/{pid}/tags", json={"add": ["buyer"]}, headers=auth)
    assert tagged.json["tags"] == ["buyer"]
    unsub = client.post(f"{URL}/{pid}/unsubscribe", headers=auth)
    assert unsub.json["status"] == "unsubscribed"
    fact = client.post(
        f"{URL}/{pid}/facts", json={"type": "order.placed", "data": {"total": 9}}, headers=auth
    )
    assert fact.status_code == 202 and fact.json["status"] == "accepted"
    fields = client.get(f"{URL}/fields", headers=auth).json["fields"]
    assert {"name": "city", "kind": "custom"} in fields
    assert {"name": "email", "kind": "text"} in fields

    deleted = client.delete(f"{URL}/{pid}", headers=auth)
    assert deleted.status_code == 200 and deleted.json["deleted"] == pid
    gone = client.get(f"{URL}/{pid}", headers=auth)
    assert gone.status_code == 404
    assert gone.json == {
        "error": "not_found",
        "field": "id",
        "message": f"no profile with id {pid}",
    }
    with runtime.of(app).db.session() as session:
        sources = set(session.scalars(select(Fact.source)))
    assert sources == {"api"}


def test_upsert_creates_then_updates(client: Any, auth: dict, app: Any) -> None:
    body = {
        "requirements": [{"fieldname": "email", "value": "bo@example.com"}],
        "fields": {"city": "Oslo"},
        "create": True,
    }
    first = client.post(f"{URL}/upsert", json=body, headers=auth)
    assert first.status_code == 201 and first.json["created"] is True
    second = client.post(f"{URL}/upsert", json=body | {"fields": {"city": "Bergen"}}, headers=auth)
    assert second.status_code == 200 and second.json["created"] is False
    assert second.json["profiles"][0]["fields"] == {"city": "Bergen"}
    assert count(app, Profile) == 1


def test_search_and_paging(client: Any, auth: dict) -> None:
    for i in range(5):
        client.post(URL, json={"email": f"p{i}@example.com", "fields": {"n": i}}, headers=auth)
    body = {"requirements": [{"fieldname": "n", "operator": ">=", "value": 1}], "start": 1}
    page = client.post(f"{URL}/search", json=body | {"length": 2}, headers=auth).json
    assert (page["start"], page["length"], page["total"]) == (1, 2, 4)
    assert [p["fields"]["n"] for p in page["profiles"]] == [2, 3]


def test_rules_fire_on_rest_updates(client: Any, auth: dict, app: Any, hub_runtime: Any) -> None:
    (hub_runtime.settings.rules_dir / "api.yaml").write_text(
        """
rules:
  - name: tag-dutch
    when:
      fact: profile.updated
      all:
        - data.fields.country: NL
    then:
      - update_profile: {add_tags: [dutch]}
"""
    )
    pid = client.post(URL, json={"email": "x@example.com"}, headers=auth).json["id"]
    client.patch(f"{URL}/{pid}", json={"fields": {"country": "NL"}}, headers=auth)
    run_jobs(hub_runtime)
    assert client.get(f"{URL}/{pid}", headers=auth).json["tags"] == ["dutch"]
    assert count(app, RuleFiring) == 1


BAD_REQUESTS: list[tuple[str, str, dict, int, str, str]] = [
    (
        "post",
        "/search",
        {"requirements": [{"fieldname": "colour", "value": "red"}]},
        400,
        "unknown_field",
        "requirements[0].fieldname",
    ),
    (
        "post",
        "/search",
        {"requirements": [{"fieldname": "email", "value": "a", "op": "="}]},
        400,
        "invalid_value",
        "requirements[0].op",
    ),
    (
        "post",
        "/search",
        {"requirements": [{"fieldname": "email", "value": {"a": 1}}]},
        400,
        "invalid_value",
        "requirements[0].value",
    ),
    ("post", "/search", {"length": "ten"}, 400, "invalid_value", "length"),
    ("post", "/upsert", {"requirements": []}, 400, "missing_value", "fields"),
    (
        "post",
        "/upsert",
        {"requirements": [], "fields": {}, "create": "yes"},
        400,
        "invalid_value",
        "create",
    ),
    ("post", "", {"fields": {}}, 400, "missing_value", "email"),
    ("post", "", {"email": "nope"}, 400, "invalid_value", "email"),
    (
        "post",
        "",
        {"email": "a@example.com", "fields": {"status": "x"}},
        400,
        "reserved_field",
        "fields.status",
    ),
    ("post", "", {"email": "a@example.com", "status": "happy"}, 400, "invalid_value", "status"),
    ("post", "", {"email": "taken@example.com"}, 409, "already_exists", "email"),
    ("patch", "/999", {"fields": {"a": 1}}, 404, "not_found", "id"),
    ("patch", "/{pid}", {"fields": {"a": float("nan")}}, 400, "invalid_value", "fields.a"),
    ("post", "/{pid}/facts", {"type": "Order Placed"}, 400, "invalid_value", "type"),
    ("post", "/{pid}/tags", {"add": "buyer"}, 400, "invalid_value", "add"),
]


def test_bad_request_names_the_field_and_stores_nothing(client: Any, auth: dict, app: Any) -> None:
    pid = client.post(URL, json={"email": "taken@example.com"}, headers=auth).json["id"]
    got = []
    for method, path, body, *_ in BAD_REQUESTS:
        response = getattr(client, method)(URL + path.format(pid=pid), json=body, headers=auth)
        assert response.json["message"]
        got.append((response.status_code, response.json["error"], response.json["field"]))
    assert got == [tuple(case[3:]) for case in BAD_REQUESTS]
    assert count(app, Fact) == 1 and count(app, Profile) == 1


def test_malformed_json_and_missing_key(client: Any, auth: dict) -> None:
    bad = client.post(URL, data=b"{nope", headers=auth | {"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json["error"] == "malformed_json"
    assert client.post(URL, json={"email": "a@example.com"}).status_code == 401
    assert client.get(f"{URL}/1").status_code == 401
