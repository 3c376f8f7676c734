"""Storing facts: the one door every entry point goes through.

A fact is committed before the caller is answered; a duplicate delivery (same ``source`` and
``source_id``) gives back the fact stored the first time.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Connection, Table, insert, select
from sqlalchemy.orm import Session

from hub.config import Settings
from hub.db import Database, dialect_insert, pairs_filter
from hub.facts.schema import FactIn
from hub.models import Fact, FactStatus
from hub.queue import request_evaluation
from hub.times import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    """What storing a fact gave: its id, and whether it was new or a duplicate."""

    id: int
    status: str  # "accepted" or "duplicate"


def store_facts(
    db: Database, facts: Sequence[FactIn], *, session: Session | None = None
) -> list[Stored]:
    """Commit ``facts`` in one transaction, all or nothing; one result per fact, in order.

    Keyed facts (with ``source_id``) are inserted with ``ON CONFLICT DO NOTHING``, so a new fact
    costs one statement and a concurrent duplicate delivery cannot fail the request; the keys
    that conflicted are then looked up to answer with the first fact's id.

    Given ``session``, the facts are inserted in the caller's open transaction instead and
    commit (or roll back) with whatever else it changes, such as the profile change a fact
    records.
    """
    # Core statements on the connection: nothing here needs the ORM, whose bookkeeping was
    # a large share of a single-fact request's CPU (measured under load).
    if session is not None:
        session.flush()  # the caller's pending changes first, as an ORM statement would
        return _store(session.connection(), facts)
    with db.engine.begin() as connection:
        return _store(connection, facts)


@functools.cache
def _insert_keyed(dialect: str) -> Any:
    """``INSERT ... ON CONFLICT (source, source_id) DO NOTHING RETURNING``, built once."""
    table = Fact.__table__
    return (
        dialect_insert(dialect, table)
        .on_conflict_do_nothing(index_elements=["source", "source_id"])
        .returning(table.c.source, table.c.source_id, table.c.id)
    )


_FACTS = cast(Table, Fact.__table__)
_INSERT_PLAIN = insert(_FACTS).returning(_FACTS.c.id, sort_by_parameter_order=True)


def _store(connection: Connection, facts: Sequence[FactIn]) -> list[Stored]:
    now = utcnow()
    keyed: dict[tuple[str, str], dict[str, Any]] = {}
    unkeyed: list[dict[str, Any]] = []
    for fact in facts:
        if fact.source_id is None:
            unkeyed.append(_row(fact, now))
        else:
            keyed.setdefault((fact.source, fact.source_id), _row(fact, now))
    new_ids: dict[tuple[str, str], int] = {}
    if keyed:
        stmt = _insert_keyed(connection.dialect.name)
        new_ids = {(s, sid): fid for s, sid, fid in connection.execute(stmt, list(keyed.values()))}
    known: dict[tuple[str, str], int] = {}
    missing = [k for k in keyed if k not in new_ids]
    if missing:
        rows = connection.execute(
            select(Fact.source, Fact.source_id, Fact.id).where(
                *pairs_filter(Fact.source, Fact.source_id, missing)
            )
        )
        wanted = set(missing)
        known = {(s, sid): fid for s, sid, fid in rows if sid is not None and (s, sid) in wanted}
    plain_ids: list[int] = []
    if unkeyed:
        result = connection.execute(_INSERT_PLAIN, unkeyed)
        plain_ids = [row[0] for row in result]
    out: list[Stored] = []
    plain = iter(plain_ids)
    reported: set[tuple[str, str]] = set()
    for fact in facts:
        if fact.source_id is None:
            out.append(Stored(next(plain), "accepted"))
            continue
        key = (fact.source, fact.source_id)
        if key in new_ids and key not in reported:
            reported.add(key)
            out.append(Stored(new_ids[key], "accepted"))
        else:
            out.append(Stored(new_ids.get(key) or known[key], "duplicate"))
    return out


def profile_key(email: str | None, external_ids: dict[str, str]) -> str | None:
    """The contact a fact names, as one string: its email, else its first external id.

    Workers evaluate the facts of one key in order, one worker at a time
    (:mod:`hub.worker.pending`). A contact named by email in one fact and by an external id
    only in another has two keys; its profile row lock still serialises their writes.
    """
    if email:
        return email
    if external_ids:
        source = min(external_ids)
        return f"{source}:{external_ids[source]}"
    return None


def _row(fact: FactIn, now: Any) -> dict[str, Any]:
    return {
        "type": fact.type,
        "source": fact.source,
        "source_id": fact.source_id,
        "occurred_at": fact.occurred_at or now,
        "received_at": now,
        "profile_ref": fact.profile.model_dump(exclude_none=True, exclude_defaults=True),
        "profile_key": profile_key(fact.profile.email, fact.profile.external_ids),
        "data": fact.data,
        "status": FactStatus.PENDING.value,
    }


class Waker:
    """Wakes a worker for the facts a web process stores: at most one Redis call per interval.

    A Redis round trip per single-fact request was an eighth of that request's CPU (py-spy
    under load). Requests only flag that a wake-up is due; a thread of the process sends it
    within ``interval`` seconds, one for all the facts committed meanwhile. The flag is
    cleared before the wake-up is sent, so every fact whose request set the flag after its
    commit is covered by a wake-up sent after that commit. A wake-up still due when the
    process exits is sent then (:meth:`close`); if the process is killed first, the facts are
    stored all the same and the sweep wakes a worker for them.
    """

    def __init__(
        self, settings: Settings, connection: Callable[[], Redis], interval: float = 0.02
    ) -> None:
        self.settings = settings
        self.connection = connection  # looked up at each wake-up: the app's current client
        self.interval = interval
        self._due = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False

    def wake(self) -> None:
        """Ask for a wake-up; call after the facts are committed."""
        if self._closed:
            notify(self.settings, self.connection())
            return
        self._due.set()
        if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
            self._start()

    def close(self) -> None:
        """Send the wake-up still due, if any, and stop the thread."""
        self._closed = True
        if self._due.is_set():
            self._due.clear()
            notify(self.settings, self.connection())
        self._due.set()  # the thread wakes up, sees it is closed and ends
        thread = self._thread
        if thread is not None and self._pid == os.getpid():
            thread.join(timeout=5)

    def _start(self) -> None:
        with self._lock:  # one thread per process (a forked child starts its own)
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="hub-waker", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    def _run(self) -> None:
        while True:
            self._due.wait()
            if self._closed:
                return
            time.sleep(self.interval)  # let the requests of the next moment join this one
            if self._closed:
                return  # close() sends what is due
            self._due.clear()
            notify(self.settings, self.connection())


def notify(settings: Settings, connection: Redis) -> None:
    """Wake a worker; if Redis is down the facts wait for the sweep, nothing is lost."""
    try:
        request_evaluation(settings, connection)
    except RedisError as exc:
        log.warning("facts stored but no worker woken (the sweep will pick them up): %s", exc)
