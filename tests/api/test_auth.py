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
