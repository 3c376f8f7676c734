"""The services and processes of a fault scenario: Redis, an SMTP sink, the hub itself.

All are real: a ``redis-server`` a test kills and restarts, an aiosmtpd server that counts
what it accepts, and the hub's own commands as subprocesses, each in a process group of its
own so that a test can kill it and whatever it started.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default as email_policy
from pathlib import Path
from typing import Any

import requests
from redis import Redis
from redis.exceptions import RedisError

from tests.conftest import ROOT, free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
SWEEP_SECONDS = 2  # short, so that what the sweep recovers is recovered quickly

# Every effect of these rules can be counted: each mail has a subject of its own per
# recipient, each increment a counter whose right value the test knows.
RULES = """\
# Written by the fault suite (tests/faults/conftest.py).
fact_types: [page.visited]
rules:
  - name: order-receipt
    when: {fact: order.placed}
    then:
      - send_mail:
          template: receipt
          subject: "Order {{ fact.data.order_id }}"
          kind: transactional
      - update_profile: {increment: {orders: 1}}

  - name: count-visits
    when: {fact: page.visited}
    then:
      - update_profile: {increment: {visits: 1}}

  - name: first-visit
    when:
      fact: page.visited
      all:
        - history: {fact: page.visited, count: 0}
    then:
      - update_profile: {increment: {first_visits: 1}}
      - send_mail: {template: receipt, subject: "Welcome", kind: transactional}

  - name: twentieth-visit
    when:
      fact: page.visited
      all:
        - history: {fact: page.visited, count: 19}
    then:
      - update_profile: {increment: {twentieth_visits: 1}}
      - send_mail: {template: receipt, subject: "Twenty visits", kind: transactional}
"""
TEMPLATE = "<p>{{ fact.type }} {{ fact.data.order_id | default('') }} for {{ profile.email }}</p>\n"


# --- Redis ------------------------------------------------------------------------------


class RedisServer:
    """A ``redis-server`` of the scenario's own, which a test kills and restarts.

    With ``persistent`` every write is in the append-only file before Redis answers
    (``--appendonly yes --appendfsync always``), so a restart finds every job; without it
    (``--save "" --appendonly no``) a restart starts empty.
    """

    def __init__(self, directory: Path, *, persistent: bool) -> None:
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.persistent:
            persistence = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        else:
            persistence = ["--save", "", "--appendonly", "no"]
        with (self.directory / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
                + ["--dir", str(self.directory), "--daemonize", "no", *persistence],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        conn = Redis.from_url(self.url, socket_timeout=1)
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    conn.ping()
                    return
                except RedisError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise
                    time.sleep(0.05)
        finally:
            conn.close()

    def kill(self) -> None:
        """``kill -9``: no save, no goodbye to the clients."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def connection(self) -> Redis:
        return Redis.from_url(self.url, socket_timeout=5)


# --- SMTP -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One message as the sink accepted it."""

    message_id: str
    recipients: tuple[str, ...]
    subject: str
    at: float


class MailSink:
    """A real SMTP server (aiosmtpd) on loopback that counts messages by Message-ID.

    A message is recorded as soon as its content has arrived, before the sink answers DATA:
    a relay that answers late has still accepted the mail and will deliver it. ``delay``
    makes every DATA answer wait (a relay under load, so that a batch of mails is in progress
    for a while); the first ``slow_first`` messages wait ``slow_seconds`` instead (a relay
    slower than the hub's SMTP timeout), each only on its first delivery.
    """

    def __init__(self, delay: float = 0.0, slow_first: int = 0, slow_seconds: float = 0.0) -> None:
        from aiosmtpd.controller import Controller

        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._slow_left = slow_first
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                msg = message_from_bytes(envelope.content, policy=email_policy)
                item = Received(
                    message_id=str(msg["Message-ID"] or ""),
                    recipients=tuple(r.lower() for r in envelope.rcpt_tos),
                    subject=str(msg["Subject"] or ""),
                    at=time.monotonic(),
                )
                with sink._lock:
                    first = all(r.message_id != item.message_id for r in sink.received)
                    sink.received.append(item)
                    slow = first and sink._slow_left > 0
                    if slow:
                        sink._slow_left -= 1
                if slow:
                    await asyncio.sleep(slow_seconds)
                elif delay:
                    await asyncio.sleep(delay)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def by_message_id(self) -> Counter[str]:
        return Counter(r.message_id for r in self.snapshot())

    def by_recipient(self) -> Counter[str]:
        return Counter(to for r in self.snapshot() for to in r.recipients)

    def by_mail(self) -> Counter[tuple[str, str]]:
        """How often each (recipient, subject) arrived: each expected mail must be there once."""
        return Counter((to, r.subject) for r in self.snapshot() for to in r.recipients)


# --- the hub's processes -----------------------------------------------------------------


class Teardown:
    """What a scenario started, undone in reverse order, once, from whichever thread ends it."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], object]] = []
        self._lock = threading.Lock()

    def add(self, undo: Callable[[], object]) -> None:
        with self._lock:
            self._undo.append(undo)

    def run(self) -> None:
        while True:
            with self._lock:
                if not self._undo:
                    return
                undo = self._undo.pop()
            try:
                undo()
            except Exception as exc:  # noqa: BLE001 - the rest must still be undone
                print(f"[faults] teardown: {type(exc).__name__}: {exc}")


class HubProcesses:
    """``hub serve``, ``hub worker`` and ``hub scheduler`` as subprocesses, one group each."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: set[str] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, name: str, args: Sequence[str]) -> None:
        with (self.root / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "hub", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )

    def start_web(self) -> None:
        self.start("web", ["serve", "--port", str(self.port), "--processes", "1"])

    def start_worker(self, name: str) -> None:
        self.start(name, ["worker", "--no-scheduler"])

    def start_scheduler(self) -> None:
        self.start("scheduler", ["scheduler"])

    def kill(self, name: str) -> None:
        """``kill -9`` of a process and whatever it started."""
        proc = self.procs[name]
        self.killed.add(name)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)

    def name_of(self, pid: int) -> str | None:
        return next((n for n, p in self.procs.items() if p.pid == pid), None)

    def exited(self) -> dict[str, int]:
        """Processes that stopped without the test killing them, with their exit codes."""
        return {
            name: code
            for name, proc in self.procs.items()
            if name not in self.killed and (code := proc.poll()) is not None
        }

    def stop_all(self, grace: float = 2.0) -> None:
        """SIGTERM to every group, SIGKILL after ``grace`` seconds (a stopping RQ worker can
        wait many seconds for its pub/sub thread; the scenario is over, its data judged)."""
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # the group: a gunicorn worker or a child left behind goes too
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)

    def log_tail(self, name: str, lines: int = 8) -> str:
        path = self.root / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for_workers(
    redis: RedisServer, count: int, procs: HubProcesses, timeout: float = 60
) -> None:
    """Until ``count`` workers are in RQ's worker registry (each has loaded its rules)."""
    from rq import Worker

    conn = redis.connection()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if Worker.count(connection=conn) >= count:
                    return
            except RedisError:
                pass
            if procs.exited():
                break
            time.sleep(0.1)
    finally:
        conn.close()
    tails = "\n".join(f"--- {n} ---\n{procs.log_tail(n)}" for n in procs.procs)
    raise AssertionError(f"{count} workers did not start; exited: {procs.exited()}\n{tails}")


def wait_for_web(procs: HubProcesses, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with requests.Session() as http:
        while time.monotonic() < deadline:
            try:
                if http.get(f"{procs.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if "web" in procs.exited():
                break
            time.sleep(0.1)
    raise AssertionError(f"the web server did not answer /healthz\n{procs.log_tail('web')}")


def write_rules(directory: Path) -> Path:
    (directory / "templates").mkdir(parents=True)
    (directory / "faults.yaml").write_text(RULES)
    (directory / "templates" / "receipt.html").write_text(TEMPLATE)
    return directory
