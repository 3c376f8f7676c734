"""Scheduled pulls: due runs start once."""

from __future__ import annotations

from sqlalchemy import select

from hub.integrations.models import ConnectorInstance, ConnectorRun
from hub.integrations.pulls import schedule_pulls
from hub.runtime import Runtime
from tests.conftest import run_jobs
from tests.stand_ins.hub_helpers import add_instance
from tests.stand_ins.magento import MagentoStandIn, customer


def test_schedule_starts_due_runs_once(hub_runtime: Runtime) -> None:
    with MagentoStandIn() as shop:
        shop.put_customers(customer(1))  # type: ignore[attr-defined]
        add_instance(hub_runtime, "shop", "magento", base_url=shop.url, access_token=shop.token)  # type: ignore[attr-defined]
        add_instance(hub_runtime, "manual", "magento", base_url=shop.url)  # type: ignore[attr-defined]
        with hub_runtime.db.session() as s:
            inst = s.scalar(select(ConnectorInstance).where(ConnectorInstance.name == "shop"))
            inst.pull_interval_seconds = 300
        started = schedule_pulls()
        assert len(started) == 2  # customers and orders of "shop"; "manual" has no schedule
        assert schedule_pulls() == []  # running: not started twice
        run_jobs(hub_runtime)
        assert schedule_pulls() == []  # finished, but the interval has not passed
        with hub_runtime.db.session() as s:
            statuses = sorted(r.status for r in s.scalars(select(ConnectorRun)))
        assert statuses == ["succeeded", "succeeded"]
