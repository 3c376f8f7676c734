"""``require_api_key``: every REST endpoint but the webhooks and the OpenAPI description
answers 401 without an active key."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import update

from hub.apikeys import create_api_key
from hub.models import ApiKey
from hub.runtime import Runtime
from hub.times import utcnow

OPEN = {
    "/healthz",
    "/api/v1/openapi.json",
    "/connectors/<instance>/webhook",
    "/static/<path:filename>",
}


def guarded(app: Any) -> list[tuple[str, str]]:
    """(method, URL) of every Flask route that needs a key, with made-up path parameters."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.rule in OPEN:
            continue
        url = re.sub(r"<[^>]+>", "1", rule.rule)
        out += [(m, url) for m in sorted(rule.methods or ()) if m not in ("HEAD", "OPTIONS")]
    return out


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer   ",
        "Basic dXNlcjpwYXNz",
        "Bearer hub_not-a-key-of-this-hub",
    ],
)
def test_every_guarded_endpoint_refuses_without_a_valid_key(
    app: Any, client: Any, header: str | None
) -> None:
    routes = guarded(app)
    assert len(routes) >= 15  # facts, profiles, rules, followups, connectors
    headers = {} if header is None else {"Authorization": header}
    got = {(m, url): client.open(url, method=m, headers=headers, json={}) for m, url in routes}
    assert {k: r.status_code for k, r in got.items()} == {k: 401 for k in got}
    for response in got.values():
        assert response.json["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="hub"'


def test_the_scheme_is_case_insensitive(client: Any, api_key: str) -> None:
    response = client.get("/api/v1/rules", headers={"Authorization": f"bearer {api_key}"})
    assert response.status_code == 200


def test_a_revoked_key_is_refused(client: Any, hub_runtime: Runtime) -> None:
    with hub_runtime.db.session() as session:
        key = create_api_key(session, "revoked-before-use")
    with hub_runtime.db.session() as session:
        session.execute(
            update(ApiKey).where(ApiKey.name == "revoked-before-use").values(revoked_at=utcnow())
        )
    response = client.get("/api/v1/rules", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401
    assert response.json["message"] == "invalid or revoked API key"


def test_a_key_missing_is_told_how_to_send_one(client: Any) -> None:
    response = client.get("/api/v1/rules")
    assert response.json["message"] == "missing API key: send Authorization: Bearer <key>"


def _key(rt: Runtime, name: str, sources: list[str] | None = None) -> dict[str, str]:
    with rt.db.session() as session:
        key = create_api_key(session, name, sources)
    return {"Authorization": f"Bearer {key}"}


def _fact(source: str, n: int = 1) -> dict[str, Any]:
    return {
        "type": "order.placed",
        "source": source,
        "source_id": f"o-{source}-{n}",
        "profile": {"email": "a@example.com"},
    }


def _stored(rt: Runtime) -> int:
    from sqlalchemy import func, select

    from hub.models import Fact

    with rt.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Fact)) or 0)


def test_a_key_used_once_is_refused_as_soon_as_it_is_revoked(
    client: Any, hub_runtime: Runtime
) -> None:
    from hub.apikeys import revoke_api_key

    headers = _key(hub_runtime, "short-lived")
    assert client.get("/api/v1/rules", headers=headers).status_code == 200
    with hub_runtime.db.session() as session:
        assert revoke_api_key(session, "short-lived")
    # no cache: the very next request is refused, not one some seconds later
    assert client.get("/api/v1/rules", headers=headers).status_code == 401


def test_no_key_posts_the_hubs_own_source_and_nothing_of_the_batch_is_stored(
    client: Any, hub_runtime: Runtime
) -> None:
    headers = _key(hub_runtime, "any")
    response = client.post("/api/v1/facts", json=[_fact("api"), _fact("hub")], headers=headers)
    assert response.status_code == 403, response.json
    assert response.json["error"] == "forbidden_source"
    assert response.json["errors"] == [
        {
            "index": 1,
            "field": "source",
            "message": "source 'hub' is reserved for the facts the hub raises itself",
        }
    ]
    assert _stored(hub_runtime) == 0


def test_a_connectors_source_needs_a_key_scoped_to_it(client: Any, hub_runtime: Runtime) -> None:
    unscoped = _key(hub_runtime, "unscoped")
    refused = client.post("/api/v1/facts", json=[_fact("magento")], headers=unscoped)
    assert refused.status_code == 403
    assert "--source magento" in refused.json["message"]
    scoped = _key(hub_runtime, "shop", ["magento"])
    assert client.post("/api/v1/facts", json=[_fact("magento")], headers=scoped).status_code == 202
    assert client.post("/api/v1/facts", json=[_fact("api")], headers=unscoped).status_code == 202
    assert _stored(hub_runtime) == 2


def test_a_scoped_key_posts_only_its_sources(client: Any, hub_runtime: Runtime) -> None:
    headers = _key(hub_runtime, "forms", ["webforms"])
    assert (
        client.post("/api/v1/facts", json=[_fact("webforms")], headers=headers).status_code == 202
    )
    refused = client.post("/api/v1/facts", json=[_fact("api", 2)], headers=headers)
    assert refused.status_code == 403
    assert refused.json["errors"][0]["message"] == (
        "source 'api' is not one this API key may post (it may post: webforms)"
    )
    assert _stored(hub_runtime) == 1


def test_a_key_cannot_be_scoped_to_the_hubs_own_source(hub_runtime: Runtime) -> None:
    with hub_runtime.db.session() as session, pytest.raises(ValueError, match="hub's own"):
        create_api_key(session, "forger", ["hub"])
