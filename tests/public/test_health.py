"""``/healthz``: 200 when the database and Redis answer, 503 naming the one that does not."""

from __future__ import annotations

from typing import Any

import pytest

from hub import runtime
from hub.app import create_app
from hub.config import Settings


def test_healthz_reports_both_services(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_needs_no_key_and_answers_json(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize(
    ("down", "override"),
    [
        ("database", {"database_url": "postgresql+psycopg://nobody@127.0.0.1:9/none"}),
        ("redis", {"redis_url": "redis://127.0.0.1:9/0"}),
    ],
)
@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_healthz_is_503_naming_the_service_that_is_down(
    settings: Settings, down: str, override: dict[str, str]
) -> None:
    app = create_app(settings.with_overrides(**override))
    try:
        response = app.test_client().get("/healthz")
    finally:
        runtime.of(app).close()
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "unavailable"
    assert body[down].startswith("error: ")
    up = ({"database", "redis"} - {down}).pop()
    assert body[up] == "ok"
