"""What the benchmark scripts share: a database of their own, and a running ``hub serve``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hub.config import Settings
from hub.db import Database
from hub.rules.engine import RuleEngine

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def bench_database(base_url: str | None, tmp: Path, label: str) -> Iterator[str]:
    """A fresh, migrated database: on the given PostgreSQL server (dropped afterwards), or a
    SQLite file in ``tmp``."""
    if not base_url:
        url = f"sqlite:///{tmp / f'{label}.sqlite3'}"
        Database(url).upgrade()
        yield url
        return
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    name = f"hub_bench_{label}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        db = Database(url)
        db.upgrade()
        db.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def serve(settings: Settings, home: Path, processes: int = 2) -> Iterator[str]:
    """Run ``hub serve`` on these settings; yield its base URL once ``/healthz`` answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {
        "HUB_HOME": str(home),
        "HUB_DATABASE_URL": settings.resolved_database_url,
        "HUB_REDIS_URL": settings.redis_url or "",
        "HUB_RULES_DIR": str(settings.rules_dir),
        "HUB_SECRET_KEY": settings.secret_key,
    }
    port = 18000 + os.getpid() % 1000
    web = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--port", str(port), "--processes", str(processes)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit("hub serve did not come up")
        yield base
    finally:
        web.terminate()
        web.wait(20)


def durable_engine_rate(engine: RuleEngine, docs: Sequence[dict[str, Any]]) -> tuple[float, int]:
    """durable_rules' C engine alone, on the ruleset the hub compiled: ready-made JSON messages
    asserted, the firing rules' actions started and completed, retracted. The raw limit of
    matching. Returns (documents per second, documents on which a rule fired)."""
    messages = [json.dumps(engine.message(doc, n)) for n, doc in enumerate(docs)]
    compiled = engine.compiled
    assert compiled is not None
    hits = 0
    start = time.perf_counter()
    for message in messages:
        hits += bool(compiled.fired(message))
    return len(messages) / (time.perf_counter() - start), hits


def durable_host_rate(engine: RuleEngine, docs: Sequence[dict[str, Any]]) -> tuple[float, int]:
    """durable_rules through its own Python API (``Host.assert_fact`` and ``retract_fact`` with
    no-op actions) on the same rules: what a program using durable_rules directly gets."""
    from durable import engine as durable_engine

    class Host(durable_engine.Host):  # without its dispatch and timer threads
        def _run(self) -> None:
            return None

    host = Host()
    name = f"bench{uuid.uuid4().hex[:8]}"
    host.set_rulesets({name: engine.durable_definition()})
    messages = [engine.message(doc, n) for n, doc in enumerate(docs)]
    hits = 0
    start = time.perf_counter()
    for message in messages:
        try:
            host.assert_fact(name, message)
        except durable_engine.MessageNotHandledException:
            continue
        host.retract_fact(name, message)
        hits += 1
    return len(messages) / (time.perf_counter() - start), hits
