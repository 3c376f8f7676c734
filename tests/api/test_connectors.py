"""``/connectors``: instances listed with secrets masked, runs started and listed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.runtime import Runtime
from tests.conftest import run_jobs
from tests.stand_ins.hub_helpers import add_instance
from tests.stand_ins.magento import MagentoStandIn, customer

ONE_BACKEND = pytest.mark.parametrize("backend", ["embedded"])


@ONE_BACKEND
def test_api_lists_instances_and_runs(
    client: Any, auth: dict[str, str], hub_runtime: Runtime
) -> None:
    with MagentoStandIn() as shop:
        shop.put_customers(customer(1))  # type: ignore[attr-defined]
        add_instance(hub_runtime, "shop", "magento", base_url=shop.url, access_token=shop.token)  # type: ignore[attr-defined]
        assert client.get("/connectors").status_code == 401
        listed = client.get("/connectors", headers=auth).get_json()["instances"]
        assert listed[0]["config"]["access_token"] == "********"
        assert shop.token not in json.dumps(listed)  # type: ignore[attr-defined]

        assert client.post("/connectors/shop/runs", json={}).status_code == 401
        started = client.post("/connectors/shop/runs", json={"stream": "customers"}, headers=auth)
        assert started.status_code == 202
        run_jobs(hub_runtime)
        runs = client.get("/connectors/shop/runs", headers=auth).get_json()["runs"]
        assert runs[0]["status"] == "succeeded" and runs[0]["facts_accepted"] == 1
        bad = client.post("/connectors/shop/runs", json={"stream": "nope"}, headers=auth)
        assert bad.status_code == 400 and "no stream 'nope'" in bad.get_json()["message"]
