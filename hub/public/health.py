"""``/healthz``: can this process reach its database and Redis, and is anyone working the facts?

A hub whose services answer but whose workers all died still takes facts (202) and does
nothing with them; the check says so: it reads RQ's worker registry (each worker renews its
entry at least every minute, see :mod:`hub.worker.process`) and the age of the oldest
pending fact, and answers 503 when facts wait and no worker was seen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, jsonify
from redis import Redis
from rq import worker_registration
from rq.utils import utcparse
from sqlalchemy import select

from hub import runtime
from hub.models import Fact, FactStatus
from hub.times import parse_time, utcnow

bp = Blueprint("health", __name__)

# A worker is "seen" if it renewed its registration this recently: an idle one renews it
# every 45 s, a busy one every 10 s; its registry entry expires two minutes after the last.
WORKER_SEEN_SECONDS = 120


@bp.get("/healthz")
def healthz() -> Any:
    """200 when all is well, else 503; each check is ``ok`` or says what is wrong.

    ``database`` and ``redis``: whether they answer. ``workers``: ``ok`` if a worker was
    seen, ``none seen`` if none was but no fact waits, an error if facts wait with nobody to
    evaluate them. ``workers_seen``, ``worker_last_seen_seconds`` (the most recent renewal)
    and ``oldest_pending_fact_seconds`` (null when none waits) are the figures behind it.
    """
    rt = runtime.of(current_app)
    body: dict[str, Any] = {}
    oldest: float | None = None
    try:
        rt.db.ping()
        body["database"] = "ok"
        oldest = _oldest_pending_seconds(rt)
    except Exception as exc:  # noqa: BLE001 - the check reports any failure as such
        body["database"] = f"error: {type(exc).__name__}"
    seen: list[float] | None = None
    try:
        rt.redis.ping()
        body["redis"] = "ok"
        seen = _workers_seen(rt.redis)
    except Exception as exc:  # noqa: BLE001
        body["redis"] = f"error: {type(exc).__name__}"
    if seen is None:
        body["workers"] = "unknown: Redis does not answer"
    elif seen:
        body["workers"] = "ok"
    elif oldest is not None:
        body["workers"] = f"error: facts wait and no worker was seen in {WORKER_SEEN_SECONDS} s"
    else:
        body["workers"] = "none seen"
    body["workers_seen"] = len(seen) if seen is not None else None
    body["worker_last_seen_seconds"] = round(min(seen), 1) if seen else None
    body["oldest_pending_fact_seconds"] = round(oldest, 1) if oldest is not None else None
    healthy = body["database"] == body["redis"] == "ok" and body["workers"] in ("ok", "none seen")
    return jsonify({"status": "ok" if healthy else "unavailable", **body}), 200 if healthy else 503


def _oldest_pending_seconds(rt: runtime.Runtime) -> float | None:
    """Seconds since the oldest pending fact was received (the lowest pending id), or None."""
    with rt.db.session() as session:
        received: datetime | None = session.scalar(
            select(Fact.received_at)
            .where(Fact.status == FactStatus.PENDING.value)
            .order_by(Fact.id)
            .limit(1)
        )
    at = parse_time(received)  # SQLite keeps no offset: the hub stores UTC
    if at is None:
        return None
    return max(0.0, (utcnow() - at).total_seconds())


def _workers_seen(connection: Redis) -> list[float]:
    """Seconds since each worker in RQ's registry last renewed it, for those seen recently.

    Read with one pipeline from the registry's keys rather than with ``Worker.all``, which
    builds a worker per entry (and widens the connection's socket timeout for its dequeue).
    """
    keys = sorted(worker_registration.get_keys(connection=connection))
    if not keys:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hmget(key, "last_heartbeat", "death")
        rows = pipe.execute()
    now = utcnow()
    ages: list[float] = []
    for last, death in rows:
        if not last or death:
            continue
        try:
            beat = utcparse(last.decode() if isinstance(last, bytes) else last)
        except ValueError:
            continue
        age = max(0.0, (now - beat).total_seconds())
        if age <= WORKER_SEEN_SECONDS:
            ages.append(age)
    return ages
