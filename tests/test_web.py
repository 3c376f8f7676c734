"""Every error a web face answers is JSON a caller can act on, also for what no view handles."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v1/facts/1/nope"])
def test_unknown_path_is_a_json_404(client: Any, auth: dict, path: str) -> None:
    response = client.get(path, headers=auth)
    assert response.status_code == 404
    assert response.is_json
    assert response.json["error"] == "not_found" and response.json["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("delete", "/healthz"), ("put", "/api/v1/facts"), ("get", "/api/v1/rules/reload")],
)
def test_wrong_method_is_a_json_405(client: Any, auth: dict, method: str, path: str) -> None:
    response = getattr(client, method)(path, headers=auth)
    assert response.status_code == 405
    assert response.is_json
    assert response.json["error"] == "method_not_allowed" and response.json["message"]


def test_too_large_body_is_a_json_413(client: Any, auth: dict, settings: Any) -> None:
    body = b"{" + b" " * settings.max_body_bytes + b"}"
    response = client.post(
        "/api/v1/facts", data=body, headers=auth | {"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json == {
        "error": "request_entity_too_large",
        "message": "request body too large",
    }
