"""The processes of ``hub up``: started, watched, started again when they die, all stopped.

Each child runs in a process group of its own, so that stopping it stops what it started
too (gunicorn's workers, RQ's scheduler process), and so that a Ctrl-C at the terminal
reaches ``hub up`` alone, which then stops the children in order rather than all of them
racing on the same signal. A child that dies is started again after a backoff (one second,
doubling up to :data:`MAX_BACKOFF`, back to one once it has run for :data:`STABLE_SECONDS`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

MAX_BACKOFF = 30.0
STABLE_SECONDS = 60.0  # a child that ran this long restarts after one second again
STOP_SECONDS = 15.0  # what a child has to stop after SIGTERM, then SIGKILL
POLL_SECONDS = 0.2


class CannotListen(Exception):  # noqa: N818 - a condition, named as the operator reads it
    """The web server's address cannot be bound (taken, or not this machine's)."""


def check_port(host: str, port: int) -> None:
    """Raise :class:`CannotListen` if ``host:port`` cannot be listened on now.

    Checked before any process starts, so that ``hub up`` on a taken port says so and
    exits instead of starting workers beside a web server that never comes up.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            raise CannotListen(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                + (" (another process uses the port)" if exc.errno == 98 else "")
            ) from exc


def health_url(host: str, port: int) -> str:
    """The ``/healthz`` URL of a server bound to ``host`` (a wildcard address: loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def answers(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status ``url`` answers with, or None if nothing answers (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - ours
            return int(response.status)
    except urllib.error.HTTPError as exc:  # 503 and such: the server answers
        return int(exc.code)
    except (OSError, ValueError):
        return None


@dataclass
class Child:
    """One supervised process: how to start it, and its restarts."""

    name: str
    argv: Sequence[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    env: dict[str, str] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start the process, in a new session (and so a process group) of its own."""
        self.proc = subprocess.Popen(list(self.argv), env=self.env, start_new_session=True)
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def running(self) -> bool:
        """Whether the process runs (started and not exited)."""
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the child's process group; False if nothing of it is left."""
        if self.proc is None:
            return False
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:  # the group id was reused by a process that is not ours
            return False
        return True


class Supervisor:
    """Runs children until asked to stop; see the module docstring."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.children: dict[str, Child] = {}
        self.stopping = False

    def add(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Child:
        """Start ``argv`` as the child ``name``."""
        child = Child(name, argv, env=env)
        child.start()
        self.children[name] = child
        return child

    def handle_signals(self) -> None:
        """SIGINT and SIGTERM ask to stop (the children are stopped by :meth:`stop`)."""

        def stop(_sig: int, _frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def wait_until(self, ready: Callable[[], bool], timeout: float, watch: str) -> bool:
        """Wait for ``ready`` while the child ``watch`` runs.

        Returns False if it died, a stop was asked for, or ``timeout`` passed first.
        """
        deadline = time.monotonic() + timeout
        while not self.stopping and time.monotonic() < deadline:
            if not self.children[watch].running:
                return False
            if ready():
                return True
            time.sleep(POLL_SECONDS)
        return False

    def run(self, *, restart: bool = True) -> int:
        """Watch the children until a stop; restart the ones that die (``restart``).

        Without ``restart``, the first child to exit stops the others; its exit status is
        returned. With it, 0 after a stop.
        """
        while not self.stopping:
            time.sleep(POLL_SECONDS)
            now = time.monotonic()
            for child in self.children.values():
                if child.proc is None or child.restart_at is not None:
                    if child.restart_at is not None and now >= child.restart_at:
                        self.say(f"{child.name}: starting again")
                        child.start()
                    continue
                code = child.proc.poll()
                if code is None:
                    continue
                child.signal_group(signal.SIGKILL)  # whatever it left running
                if not restart:
                    self.say(f"{child.name} exited with {code}; stopping")
                    self.stopping = True
                    return code or 1
                if now - child.started_at >= STABLE_SECONDS:
                    child.failures = 0
                delay = min(2.0**child.failures, MAX_BACKOFF)
                child.failures += 1
                child.restart_at = now + delay
                self.say(f"{child.name} exited with {code}; starting it again in {delay:.0f} s")
        return 0

    def restart_exited(self) -> None:
        """Start again at once every child that exited: for a caller that looks rarely.

        ``hub worker`` calls it at each maintenance round (every 30 s) for its scheduler;
        :meth:`run` is the watch with a backoff.
        """
        for child in self.children.values():
            if child.proc is not None and not child.running:
                self.say(f"{child.name} exited with {child.proc.returncode}; starting it again")
                child.signal_group(signal.SIGKILL)  # whatever it left running
                child.start()

    def stop(self) -> None:
        """Stop every child and all it started: SIGTERM, then SIGKILL for what remains.

        Returns once no process of any child's group is left.
        """
        children = [c for c in self.children.values() if c.proc is not None]
        for child in children:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for child in children:
            assert child.proc is not None
            try:
                child.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in {STOP_SECONDS:.0f} s; killing it")
        # the group outlives its leader when the leader left children behind (a gunicorn
        # worker still finishing a request): wait for them a little, then kill them
        for child in children:
            while child.signal_group(0) and time.monotonic() < deadline:
                time.sleep(0.05)
            child.signal_group(signal.SIGKILL)
            assert child.proc is not None
            try:
                child.proc.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
                pass
        for child in children:  # their last members gone too
            end = time.monotonic() + 5
            while child.signal_group(0) and time.monotonic() < end:
                time.sleep(0.05)
