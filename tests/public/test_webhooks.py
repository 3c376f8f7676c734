"""``POST /connectors/<instance>/webhook``, whatever the connector: unknown, disabled or
unreadable instances are refused and nothing is stored. (Each connector's signatures and
payloads: tests/connectors/builtin/.)"""

from __future__ import annotations

from typing import Any

import requests
from sqlalchemy import func, select

from hub.integrations.models import ConnectorInstance
from hub.integrations.secrets import SecretBox
from hub.integrations.store import save_instance
from hub.models import Fact
from hub.runtime import Runtime

ERP = {
    "division": 7,
    "client_id": "cid",
    "client_secret": "s3cret",
    "refresh_token": "r0",
    "webhook_secret": "exact-webhook-secret",
}


def facts(rt: Runtime) -> int:
    with rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(Fact)) or 0


def test_an_unknown_instance_is_404(client: Any, hub_runtime: Runtime) -> None:
    answer = client.post("/connectors/nobody/webhook", data=b"{}")
    assert answer.status_code == 404 and "no connector instance named 'nobody'" in answer.text
    assert facts(hub_runtime) == 0


def test_a_disabled_instance_is_404(client: Any, hub_runtime: Runtime) -> None:
    save_instance(hub_runtime.db, SecretBox(hub_runtime.settings.secret_key), "erp", "exact", ERP)
    with hub_runtime.db.session() as s:
        s.scalar(select(ConnectorInstance)).enabled = False
    answer = client.post("/connectors/erp/webhook", data=b"{}")
    assert answer.status_code == 404 and "disabled" in answer.json["message"]
    assert facts(hub_runtime) == 0


def test_secrets_sealed_under_another_key_are_503_without_saying_more(
    client: Any, hub_runtime: Runtime
) -> None:
    save_instance(hub_runtime.db, SecretBox("the-key-before-it-changed"), "erp", "exact", ERP)
    answer = client.post("/connectors/erp/webhook", data=b"{}")
    assert answer.status_code == 503
    assert answer.json["message"] == "this instance's secrets cannot be read"
    assert facts(hub_runtime) == 0


def test_an_instance_added_while_the_hub_runs_answers_at_once(
    hub_url: str, hub_runtime: Runtime
) -> None:
    """No restart: each delivery reads its instance, so one saved by the CLI works at once."""
    before = requests.post(f"{hub_url}/connectors/late/webhook", data=b"", timeout=10)
    assert before.status_code == 404
    save_instance(hub_runtime.db, SecretBox(hub_runtime.settings.secret_key), "late", "exact", ERP)
    after = requests.post(f"{hub_url}/connectors/late/webhook", data=b"", timeout=10)
    assert after.status_code == 200 and after.content == b""  # Exact's validation POST
    assert facts(hub_runtime) == 0
