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


@pytest.mark.parametrize("backend", ["production"], indirect=True)
def test_a_cut_database_connection_is_a_503_to_send_again_not_a_500(
    client: Any, auth: dict, database_url: str
) -> None:
    from sqlalchemy import create_engine, text

    fact = {"type": "order.placed", "source_id": "o-1", "profile": {"email": "a@example.com"}}
    assert client.post("/api/v1/facts", json=fact, headers=auth).status_code == 202
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # as a failover or an operator would
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    admin.dispose()
    again = {**fact, "source_id": "o-2"}
    cut = client.post("/api/v1/facts", json=again, headers=auth)
    assert cut.status_code == 503, cut.get_json()
    assert cut.get_json()["error"] == "database_unavailable"
    assert cut.headers["Retry-After"] == "1"
    assert "send it again" in cut.get_json()["message"]
    resent = client.post("/api/v1/facts", json=again, headers=auth)  # a new connection
    assert resent.status_code == 202, resent.get_json()
