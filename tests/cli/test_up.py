"""``hub up`` as an operator runs it: a real supervisor, real children, real HTTP.

What an operator relies on: a taken port is said at once (and nothing is started), "hub is
up" means the web server answers, a worker that dies is started again, and Ctrl-C stops
every process ``hub up`` started and frees the port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
import requests
from redis import Redis
from rq import worker_registration

from hub.config import Settings
from tests.cli.helpers import hub
from tests.conftest import ROOT, free_port, hub_env, stop_hub, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def backend() -> str:
    """PostgreSQL and the test's Redis: the workers' registry is then this test's to read."""
    return "production"


UP_LINE = "hub is up"


class Up:
    """A ``hub up`` process in a session of its own, its output read line by line.

    The moment "hub is up" is read, ``/healthz`` is asked: what it answered then is kept.
    """

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self.health_when_up: int | str | None = None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "up", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            if UP_LINE in line and self.health_when_up is None:
                try:  # at once, before anything else of the test runs
                    self.health_when_up = requests.get(f"{self.url}/healthz", timeout=2).status_code
                except requests.RequestException as exc:
                    self.health_when_up = type(exc).__name__
            self.lines.append(line)

    def close(self) -> None:
        """Stop it (and its group) if it still runs, and close its output."""
        stop_hub(self.proc)
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_up(self, timeout: float = 30) -> None:
        assert wait_until(lambda: self.health_when_up is not None, timeout, interval=0.05), (
            self.output[-3000:]
        )

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def worker_pids(self) -> list[int]:
        """The direct children that are ``hub worker`` processes."""
        pids = []
        for child in psutil.Process(self.proc.pid).children():
            try:
                if "worker" in child.cmdline()[3:4]:
                    pids.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return pids


@pytest.fixture
def up_env(settings: Settings) -> dict[str, str]:
    return hub_env(settings, HUB_SWEEP_INTERVAL_SECONDS="2")


@pytest.fixture
def started(up_env: dict[str, str]) -> Iterator[Up]:
    up = Up(up_env, free_port())
    try:
        up.wait_up()
        yield up
    finally:
        groups = _groups(up)
        up.close()
        for pgid in groups:  # whatever a failed test left behind
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _groups(up: Up) -> set[int]:
    groups = {up.proc.pid}
    for child in up.children():
        try:
            groups.add(os.getpgid(child.pid))
        except ProcessLookupError:
            continue
    return groups


def _left_in(groups: set[int]) -> list[str]:
    """Every process (zombies too) in one of ``groups``, as "pid name status"."""
    left = []
    for proc in psutil.process_iter(["pid", "name", "status"]):
        try:
            if os.getpgid(proc.pid) in groups:
                left.append(f"{proc.pid} {proc.info['name']} {proc.info['status']}")
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return left


def _can_listen(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def test_up_on_a_taken_port_exits_at_once_naming_it_and_starts_nothing(
    settings: Settings, up_env: dict[str, str]
) -> None:
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        began = time.monotonic()
        result = hub(["up", "--port", str(port)], up_env)
        took = time.monotonic() - began
    assert result.returncode != 0
    assert f"127.0.0.1:{port}" in result.stderr and "--port" in result.stderr, result.stderr
    assert took < 10, f"took {took:.1f} s to give up"
    # no child was started: none wrote a line, none registered as a worker
    assert UP_LINE not in result.stdout
    assert "worker" not in (result.stdout + result.stderr).lower().replace("--workers", "")
    redis = Redis.from_url(settings.redis_url or "")
    try:
        assert not worker_registration.get_keys(connection=redis)
    finally:
        redis.close()


def test_hub_is_up_is_said_only_once_healthz_answers(started: Up) -> None:
    assert started.health_when_up == 200, started.output[-3000:]
    assert sum(UP_LINE in line for line in started.lines) == 1
    assert f"http://127.0.0.1:{started.port}/" in started.output


def test_a_killed_worker_is_started_again_and_works_the_next_fact(
    started: Up, api_key: str
) -> None:
    assert wait_until(lambda: len(started.worker_pids()) == 1, 10), started.output[-3000:]
    (first,) = started.worker_pids()
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: started.worker_pids() not in ([], [first]), 15), started.output[
        -3000:
    ]
    (second,) = started.worker_pids()
    assert second != first
    assert "worker-0 exited with -9; starting it again" in started.output
    headers = {"Authorization": f"Bearer {api_key}"}
    posted = requests.post(
        f"{started.url}/api/v1/facts",
        json={
            "type": "order.placed",
            "profile": {
                "email": "ann@example.com",
                "consent": {"status": "subscribed", "proof": "opted in at checkout"},
            },
            "data": {"total": 80},
        },
        headers=headers,
        timeout=10,
    )
    assert posted.status_code == 202, posted.text
    fact = f"{started.url}/api/v1/facts/{posted.json()['facts'][0]['id']}"

    def evaluated() -> bool:
        return requests.get(fact, headers=headers, timeout=5).json()["status"] == "evaluated"

    assert wait_until(evaluated, 20, interval=0.2), started.output[-3000:]
    assert started.worker_pids() == [second]  # the new worker did it, and is still there


def test_ctrl_c_stops_every_process_it_started_and_frees_the_port(started: Up) -> None:
    assert wait_until(lambda: len(started.children()) >= 5, 10)  # web (+2), scheduler, worker
    groups = _groups(started)
    pids = {c.pid for c in started.children()}
    assert len(groups) == 4, groups  # hub up's own, and one per child
    os.killpg(started.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    assert started.proc.wait(25) == 0, started.output[-3000:]
    assert not _left_in(groups), _left_in(groups)
    assert not [p for p in pids if psutil.pid_exists(p)]
    assert _can_listen(started.port)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{started.url}/healthz", timeout=2)


def test_sigterm_stops_every_process_too(started: Up) -> None:
    assert wait_until(lambda: len(started.children()) >= 5, 10)
    groups = _groups(started)
    started.proc.terminate()  # a service manager's stop: hub up's pid only
    assert started.proc.wait(25) == 0, started.output[-3000:]
    assert not _left_in(groups), _left_in(groups)
    assert _can_listen(started.port)


def test_embedded_up_leaves_nothing_behind_either(tmp_path: Path, rules_dir: Path) -> None:
    """On embedded defaults ``hub up`` also starts a Redis server: Ctrl-C stops it too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {"HUB_HOME": str(tmp_path / "var"), "HUB_RULES_DIR": str(rules_dir)}
    up = Up(env, free_port())
    groups: set[int] = set()
    try:
        up.wait_up()
        assert up.health_when_up == 200, up.output[-3000:]
        assert wait_until(lambda: len(up.children()) >= 5, 10)
        groups = _groups(up)
        everything = {c.pid for c in up.children()}
        os.killpg(up.proc.pid, signal.SIGINT)
        assert up.proc.wait(25) == 0, up.output[-3000:]
        left = [
            p.cmdline()
            for p in psutil.process_iter()
            if p.pid in everything or str(tmp_path) in " ".join(_cmdline(p))
        ]
        assert not left, left
        assert not _left_in(groups)
    finally:
        up.close()
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []
