"""What the benchmark scripts share: a database of their own, a running ``hub serve`` and
``hub worker``, and an SMTP server that records when each mail arrives."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
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


def hub_env(settings: Settings, home: Path) -> dict[str, str]:
    """The environment of a ``hub`` command on these settings (no other ``HUB_`` variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {
        "HUB_HOME": str(home),
        "HUB_DATABASE_URL": settings.resolved_database_url,
        "HUB_REDIS_URL": settings.redis_url or "",
        "HUB_RULES_DIR": str(settings.rules_dir),
        "HUB_SECRET_KEY": settings.secret_key,
    }
    if settings.smtp_url:
        env["HUB_SMTP_URL"] = settings.smtp_url
    return env


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(settings: Settings, home: Path, processes: int = 2) -> Iterator[str]:
    """Run ``hub serve`` on these settings; yield its base URL once ``/healthz`` answers."""
    env = hub_env(settings, home)
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


@contextmanager
def run_worker(settings: Settings, home: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``hub worker --no-scheduler`` on these settings, its output in ``log``; stop it after.

    The caller waits for the worker to be ready (a first fact evaluated and its mail sent).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "hub", "worker", "--no-scheduler"],
            env=hub_env(settings, home),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)


class MailSink:
    """A real SMTP server (aiosmtpd) on loopback that notes when each recipient's mail arrives.

    The time is ``time.perf_counter()`` of this process when the relay has the whole message
    (its ``DATA`` handler), the moment a real relay would take responsibility for it.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self._arrived: dict[str, float] = {}
        self._changed = threading.Condition()
        self._controller: Any = None

    @property
    def url(self) -> str:
        """The ``HUB_SMTP_URL`` of this server."""
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> MailSink:
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                now = time.perf_counter()
                with sink._changed:
                    for rcpt in envelope.rcpt_tos:
                        sink._arrived.setdefault(rcpt.lower(), now)
                    sink._changed.notify_all()
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def wait_for(self, rcpt: str, timeout: float) -> float | None:
        """When the mail to ``rcpt`` arrived (``perf_counter``), or None after ``timeout`` s."""
        deadline = time.perf_counter() + timeout
        rcpt = rcpt.lower()
        with self._changed:
            while rcpt not in self._arrived:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self._changed.wait(left)
            return self._arrived[rcpt]

    @property
    def count(self) -> int:
        """How many recipients got a mail so far."""
        with self._changed:
            return len(self._arrived)


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
