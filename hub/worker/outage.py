"""Riding out a Redis outage: capped backoff, and one log line when it starts and one when it ends.

A worker or scheduler that loses Redis must neither exit (nobody would start it again) nor
write a line per attempt (an outage of ten minutes would bury the log). Each process keeps
one :class:`Outage` per service; every part that meets the error reports it there, and the
part that waits calls :meth:`Outage.wait_until`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# What a lost or unreachable Redis raises (a refused connection, a reset, a socket timeout);
# other Redis errors (a wrong type, a script error) are bugs and are not ridden out.
REDIS_DOWN: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
FIRST_DELAY = 0.5  # seconds before the first retry
MAX_DELAY = 10.0  # the backoff's cap: a service back is noticed within this


class Outage:
    """The state of one service as one process sees it: up, or down since when.

    Thread-safe: a worker's main loop, its job heartbeat and its pub/sub thread report to the
    same one, and the outage is logged once whichever saw it first.
    """

    def __init__(
        self,
        what: str,
        *,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        logger: logging.Logger | None = None,
    ) -> None:
        self.what = what
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.log = logger or log
        self._lock = threading.Lock()
        self._since: float | None = None
        self._delay = first_delay
        self.outages = 0  # how many began in this process's life (for tests and logs)

    @property
    def down(self) -> bool:
        """Whether an outage is under way (reported and not yet seen to end)."""
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        """Report that the service failed; the first report of an outage is logged."""
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
            self._delay = self.first_delay
            self.outages += 1
        self.log.warning(
            "%s unavailable (%s: %s); waiting for it, retrying with backoff up to %.0f s",
            self.what,
            type(exc).__name__,
            exc,
            self.max_delay,
        )

    def recovered(self) -> bool:
        """Report that the service answered; logs the end of an outage. True if one ended."""
        with self._lock:
            since, self._since = self._since, None
            self._delay = self.first_delay
        if since is None:
            return False
        self.log.warning("%s available again after %.1f s", self.what, time.monotonic() - since)
        return True

    def next_delay(self) -> float:
        """The pause before the next attempt: doubles from ``first_delay`` up to ``max_delay``."""
        with self._lock:
            delay = self._delay
            self._delay = min(self._delay * 2, self.max_delay)
        return delay

    def wait_until(
        self,
        check: Callable[[], object],
        *,
        stop: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> bool:
        """Call ``check`` until it does not raise a :data:`REDIS_DOWN` error.

        Returns True once it passed, False if ``stop`` said to give up first. Between
        attempts it sleeps the backoff's delay.
        """
        while True:
            if stop is not None and stop():
                return False
            try:
                check()
            except REDIS_DOWN as exc:
                self.failed(exc)
                sleep(self.next_delay())
                continue
            self.recovered()
            return True


def wait_for_redis(
    connection: Redis, outage: Outage, *, stop: Callable[[], bool] | None = None
) -> bool:
    """Block until ``connection`` answers PING (see :meth:`Outage.wait_until`)."""
    return outage.wait_until(connection.ping, stop=stop)
