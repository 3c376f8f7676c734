"""``GET /api/v1/openapi.json``: the description of the REST API, and of all of it."""

from __future__ import annotations

import re
from typing import Any

import pytest

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def test_openapi_describes_the_endpoints(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert {"/api/v1/facts", "/api/v1/facts/{id}", "/api/v1/profiles", "/healthz"} <= set(
        spec["paths"]
    )


def test_openapi_lists_the_profile_paths(client: Any) -> None:
    paths = set(client.get("/api/v1/openapi.json").json["paths"])
    assert {
        "/api/v1/profiles",
        "/api/v1/profiles/upsert",
        "/api/v1/profiles/search",
        "/api/v1/profiles/fields",
        "/api/v1/profiles/{id}",
        "/api/v1/profiles/{id}/tags",
        "/api/v1/profiles/{id}/unsubscribe",
        "/api/v1/profiles/{id}/facts",
    } <= paths


def served(app: Any) -> set[tuple[str, str]]:
    """(method, path with its parameters as ``{}``) of every Flask route but the SOAP mounts."""
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule == "/api/v1/openapi.json":
            continue
        path = re.sub(r"<[^>]+>", "{}", rule.rule)
        out |= {(m.lower(), path) for m in rule.methods or () if m.lower() in HTTP_METHODS}
    return out


def described(client: Any) -> set[tuple[str, str]]:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    return {
        (m, re.sub(r"\{[^}]+\}", "{}", p))
        for p, ops in paths.items()
        for m in ops
        if m in HTTP_METHODS
    }


def test_openapi_needs_no_key_and_is_json(client: Any) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.json["info"]["title"]


@pytest.mark.parametrize("side", ["served but not described", "described but not served"])
def test_openapi_and_the_served_routes_agree(app: Any, client: Any, side: str) -> None:
    missing = (
        served(app) - described(client)
        if side == "served but not described"
        else described(client) - served(app)
    )
    assert sorted(missing) == []
