"""``create_app``: one runtime, every face registered, settings from HUB_* unless given."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from hub import runtime
from hub.app import create_app
from hub.config import Settings
from tests.conftest import hub_env


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/healthz", "application/json", b'"status"'),  # the public face
        ("/api/v1/openapi.json", "application/json", b'"openapi"'),  # the API face
        ("/soap?wsdl", "text/xml", b"definitions"),  # the SOAP face, 1.1
        ("/soap12?wsdl", "text/xml", b"soap12"),  # and 1.2
    ],
)
def test_every_face_is_registered(client: Any, path: str, content_type: str, marker: bytes) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.data[:300]
    assert response.content_type.startswith(content_type)
    assert marker in response.data


def test_the_app_has_its_own_runtime_with_a_waker(app: Flask, settings: Settings) -> None:
    rt = runtime.of(app)
    assert rt.settings is settings
    assert rt.waker is not None  # a web process batches its wake-ups
    assert rt is not runtime.current()  # not the jobs' runtime
    assert app.config["MAX_CONTENT_LENGTH"] == settings.max_body_bytes


def test_settings_come_from_hub_variables_when_not_given(
    settings: Settings, auth: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in hub_env(settings, HUB_MAX_FACTS_PER_REQUEST="3").items():
        if name.startswith("HUB_"):
            monkeypatch.setenv(name, value)
    app = create_app()
    try:
        rt = runtime.of(app)
        assert rt.settings.resolved_database_url == settings.resolved_database_url
        assert rt.settings.max_facts_per_request == 3
        client = app.test_client()
        health = client.get("/healthz").json
        assert (health["status"], health["database"], health["redis"]) == ("ok", "ok", "ok")
        fact = {"type": "order.placed", "profile": {"email": "a@example.com"}}
        assert client.post("/api/v1/facts", json=[fact] * 4, headers=auth).status_code == 413
        assert client.post("/api/v1/facts", json=[fact] * 3, headers=auth).status_code == 202
    finally:
        runtime.of(app).close()
