"""What a hub process holds: settings, database, Redis, the action registry and the rule engine.

One :class:`Runtime` per process and settings, reached the same way everywhere: web code with
:func:`of` (the app's own, built by ``create_app``), jobs with :func:`current` (installed by
``hub worker`` before the first job), the command line by building one. Jobs receive ids and
plain data, never these objects.

The rules of a process are (re)loaded through :meth:`Runtime.reload_rules` only: the worker
calls it before each drain, the web process before it simulates or lists rules.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError

from hub.config import Settings
from hub.db import Database
from hub.exceptions import HubError
from hub.facts.ingest import Waker, notify
from hub.queue import connect
from hub.rules.actions import ActionRegistry
from hub.rules.engine import RuleEngine
from hub.rules.exceptions import RuleFileError, RuleProblem
from hub.rules.reader import check_rules, directory_fingerprint

log = logging.getLogger(__name__)
APP_KEY = "hub.runtime"


class NoRuntime(HubError):
    """A job ran in a process that no hub command set up (run jobs with ``hub worker``)."""


@dataclass
class Runtime:
    """The shared objects of one process; see the module docstring for how to reach it."""

    settings: Settings
    db: Database
    redis: Redis
    actions: ActionRegistry
    waker: Waker | None = field(default=None, repr=False)  # web processes batch wake-ups
    _engine: RuleEngine | None = field(default=None, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)
    _problems: list[RuleProblem] = field(default_factory=list, repr=False)

    @classmethod
    def build(cls, settings: Settings, actions: ActionRegistry) -> Runtime:
        """Connect to the database and Redis that ``settings`` name."""
        return cls(
            settings=settings,
            db=Database(settings.resolved_database_url),
            redis=connect(settings),
            actions=actions,
        )

    @property
    def engine(self) -> RuleEngine:
        """The rule engine, loaded on first use (a web process that never simulates needs none).

        Raises:
            RuleFileError: no valid rule set was ever loaded in this process.
        """
        if self._engine is None:
            problems = self.reload_rules()
            if self._engine is None:
                raise RuleFileError(problems)
        return self._engine

    def set_engine(self, engine: RuleEngine | None) -> None:
        """Use ``engine`` (None: read the rule directory again at the next use)."""
        self._engine = engine
        self._fingerprint = None

    def reload_rules(self) -> list[RuleProblem]:
        """Load the rule directory again if its files changed; return its problems ([]: valid).

        An invalid change leaves the last valid rule set running; the problems are logged once
        per change and kept in Redis (``<prefix>:rules:error``, shown by ``GET /api/v1/rules``)
        until a valid set replaces them.
        """
        path = self.settings.rules_dir
        fingerprint = directory_fingerprint(path)
        if fingerprint == self._fingerprint:
            return self._problems
        ruleset, problems = check_rules(path, self.actions)
        self._fingerprint, self._problems = fingerprint, problems
        if problems:
            running = self._engine.ruleset.version if self._engine else None
            log.error(
                "rule files are invalid; running version %s:\n%s",
                running,
                "\n".join(str(p) for p in problems),
            )
            self._keep_error("\n".join(str(p) for p in problems))
            return problems
        if self._engine is None or ruleset.version != self._engine.ruleset.version:
            self._engine = RuleEngine(ruleset)
            log.info("rules loaded: version %s (%d rules)", ruleset.version, len(ruleset.rules))
        self._keep_error(None)
        return []

    def rules_error(self) -> str | None:
        """The problems a process of this installation last found in the rule files, if any."""
        value = self.redis.get(self._error_key)
        return value.decode() if isinstance(value, bytes) else value

    @property
    def _error_key(self) -> str:
        return f"{self.settings.redis_prefix}:rules:error"

    def _keep_error(self, text: str | None) -> None:
        try:
            if text is None:
                self.redis.delete(self._error_key)
            else:
                self.redis.set(self._error_key, text)
        except RedisError as exc:  # the rules still load; only the report is missing
            log.warning("could not record the rules' state in Redis: %s", exc)

    def wake(self) -> None:
        """Wake a worker for facts this process has committed (batched by the waker, if any)."""
        if self.waker is not None:
            self.waker.wake()
        else:
            notify(self.settings, self.redis)

    def close(self) -> None:
        """Send a wake-up still due, release the database pool and the Redis connection."""
        if self.waker is not None:
            self.waker.close()
        self.db.dispose()
        self.redis.close()


_current: Runtime | None = None
_lock = threading.Lock()


def install(rt: Runtime | None) -> None:
    """Make ``rt`` the runtime of this process's jobs (None: none)."""
    global _current
    with _lock:
        _current = rt


def current() -> Runtime:
    """The runtime this process's jobs use.

    Raises:
        NoRuntime: nothing installed one (the job runs outside ``hub worker``).
    """
    rt = _current
    if rt is None:
        raise NoRuntime("no hub runtime in this process: run jobs with `hub worker`")
    return rt


def init_app(app: Flask, rt: Runtime) -> None:
    """Attach ``rt`` to ``app``, for :func:`of`."""
    app.extensions[APP_KEY] = rt


def of(app: Flask) -> Runtime:
    """The runtime of a web app (``of(current_app)`` in a view)."""
    rt: Runtime = app.extensions[APP_KEY]
    return rt
