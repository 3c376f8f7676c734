"""What a worker process holds for its jobs: settings, database, Redis and the rule engine.

Built once per process (jobs receive ids and plain data, never these objects), either by
``hub worker`` at start or, lazily, from the environment on first use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from redis import Redis

from hub import config
from hub.config import Settings
from hub.db import Database
from hub.queue import connect


@dataclass
class Runtime:
    settings: Settings
    db: Database
    redis: Redis
    _engine: object | None = field(default=None, repr=False)

    @property
    def engine(self):  # noqa: ANN201 - hub.rules.engine.RuleEngine, imported lazily
        """The rule engine, built on first use (the web process never needs one)."""
        if self._engine is None:
            from hub.rules.engine import RuleEngine
            from hub.rules.reader import load_rules

            self._engine = RuleEngine(load_rules(self.settings.rules_dir))
        return self._engine

    def set_engine(self, engine: object) -> None:
        self._engine = engine

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings, db=Database(settings.resolved_database_url), redis=connect(settings)
        )


_current: Runtime | None = None
_lock = threading.Lock()


def install(runtime: Runtime) -> None:
    global _current
    _current = runtime


def get() -> Runtime:
    global _current
    with _lock:
        if _current is None:
            _current = Runtime.build(config.from_env())
        return _current
