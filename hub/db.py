"""Database engine, sessions and migrations.

One :class:`Database` per process and settings, held by the process's
:class:`~hub.runtime.Runtime`.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import JSON, Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from hub import jsoncodec

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class Database:
    """An engine and its session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite (else PostgreSQL)."""
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back otherwise."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        """Run ``SELECT 1``: raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def upgrade(self) -> None:
        """Apply every Alembic migration not yet applied."""
        command.upgrade(alembic_config(self.url, self.engine), "heads")

    def dispose(self) -> None:
        """Close the pool's connections; the engine makes new ones if it is used again."""
        self.engine.dispose()


def make_engine(url: str) -> Engine:
    """An engine for ``url``, with the hub's JSON codec and its settings for the dialect.

    SQLite runs in WAL mode and takes the write lock at ``BEGIN``, so that writers queue instead
    of failing; PostgreSQL gets a pool without server-side prepared statements whose idle
    connections are pinged before use.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 30},
            json_serializer=jsoncodec.dumps,
            json_deserializer=jsoncodec.loads,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    # No server-side prepared statements: PostgreSQL plans a prepared `col = ANY($1)` once,
    # generically, and with statistics from when a table was small that plan scans the table
    # and compares every row with every array element (measured: 0.2 s instead of 5 ms for a
    # batch's 500 e-mails). Planning each statement anew costs well under a millisecond; it
    # also lets the hub run behind PgBouncer in transaction mode.
    engine = create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        connect_args={"prepare_threshold": None},
        json_serializer=jsoncodec.dumps,
        json_deserializer=jsoncodec.loads,
    )

    def ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        _ping_if_idle(engine.dialect, dbapi_conn, record)

    event.listen(engine, "checkout", ping_if_idle)
    event.listen(engine, "checkin", _mark_checked_in)
    return engine


# A pooled connection idle for longer than this is pinged before use. SQLAlchemy's
# ``pool_pre_ping`` pings on every checkout: one more round trip per request, a quarter of a
# single-fact ingest's time under load (measured). A connection in steady use has just shown
# it works; one that sat idle may have been cut by a database restart or a firewall.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_if_idle(dialect: Any, dbapi_conn: Any, record: Any) -> None:
    """Raise ``DisconnectionError`` if a connection that sat idle no longer answers.

    The pool then takes a new connection.
    """
    last_used = record.info.get("checked_in")
    if last_used is None or time.monotonic() - last_used < PING_AFTER_IDLE_SECONDS:
        return  # new (just connected) or in steady use
    from sqlalchemy.exc import DisconnectionError

    try:
        alive = dialect.do_ping(dbapi_conn)
    except Exception as exc:  # noqa: BLE001 - any failure means: take another connection
        raise DisconnectionError(str(exc)) from exc
    if not alive:
        raise DisconnectionError("ping failed")


def _mark_checked_in(_dbapi_conn: Any, record: Any) -> None:
    record.info["checked_in"] = time.monotonic()


# SQLite's lower() changes ASCII letters only ('École' stays 'École'); searches that ignore
# case call this one on SQLite instead (hub/profiles/search.py), Python's str.lower.
UNICODE_LOWER = "unicode_lower"


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the web server read while a worker writes; the Python driver's own
    # transaction handling is switched off so that BEGIN IMMEDIATE below takes effect.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    dbapi_conn.create_function(UNICODE_LOWER, 1, _unicode_lower, deterministic=True)


def _sqlite_begin_immediate(conn: Any) -> None:
    # Take the write lock at the start of every transaction: two writers then queue on the
    # busy timeout instead of failing with "database is locked" on lock upgrade.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def import_models() -> list[str]:
    """Import every module named ``models`` in the ``hub`` package; return their names.

    Tables live beside their concept (``hub/models.py``, ``hub/integrations/models.py``, ...);
    importing them all puts every table into ``Base.metadata`` for Alembic without a list that
    someone adding a table must remember to extend.
    """
    package = Path(__file__).resolve().parent
    names = sorted(
        ".".join(("hub", *path.relative_to(package).with_suffix("").parts))
        for path in package.rglob("models.py")
    )
    for name in names:
        importlib.import_module(name)
    return names


def alembic_config(url: str, engine: Engine | None = None) -> Config:
    """Alembic's configuration for ``url``; migrations run on ``engine`` if one is given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def dialect_name(bind: Session | Connection | str) -> str:
    """The dialect (``postgresql``, ``sqlite``) of a session, a connection, or a name as is."""
    if isinstance(bind, str):
        return bind
    if isinstance(bind, Connection):
        return bind.dialect.name
    return bind.get_bind().dialect.name


def dialect_insert(bind: Session | Connection | str, table: Any) -> Any:
    """``INSERT`` of the dialect of ``bind``, which offers ``on_conflict_do_nothing``."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return (pg_insert if dialect_name(bind) == "postgresql" else sqlite_insert)(table)


def pairs_filter(first: Any, second: Any, pairs: Iterable[tuple[Any, Any]]) -> list[Any]:
    """``WHERE`` clauses for "(first, second) is one of pairs", as two plain ``IN`` lists.

    A row-value ``(a, b) IN ((..), ..)`` makes PostgreSQL's planning time grow with the square
    of the list; two ``IN`` lists use the composite index at once. They can also match pairs
    that were not asked for (a with another b): callers keep only the rows they asked for.
    """
    pairs = list(pairs)
    return [first.in_({a for a, _ in pairs}), second.in_({b for _, b in pairs})]


def one_of(session: Session, column: Any, values: Iterable[Any]) -> Any:
    """``column IN values``; on PostgreSQL ``column = ANY(:array)``, one bound parameter.

    An ``IN`` list binds one parameter per value: SQLAlchemy expands it on every call and
    psycopg parses the long statement each time (it caches only short ones), about 10 ms for
    500 values here, more than the query itself. An array is one parameter of one short
    statement. For the look-ups a batch makes by hundreds of ids.
    """
    from sqlalchemy import any_, bindparam
    from sqlalchemy.dialects.postgresql import ARRAY

    values = list(values)
    if dialect_name(session) == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows of ``table`` (all with the same keys) in the session's transaction.

    psycopg's executemany adapts and sends the rows one by one (about 50 µs a row measured
    here, several times the server's own work); on PostgreSQL the rows are streamed with
    ``COPY`` instead, about twice as fast again as one ``INSERT ... SELECT`` from a JSON
    document. Elsewhere (SQLite, in-process) an executemany is already cheap.
    """
    if not rows:
        return
    if dialect_name(session) != "postgresql":
        session.execute(table.insert(), rows)
        return
    names = list(rows[0])
    convert = _bind_converters(session, table, names, json_columns=True)
    columns = ", ".join(f'"{n}"' for n in names)
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(
                [row[n] if f is None else f(row[n]) for n, f in zip(names, convert, strict=True)]
            )


def bulk_update(session: Session, entity: Any, rows: list[dict[str, Any]]) -> None:
    """Update many rows of an ORM ``entity`` by primary key ``id``, each with its own values.

    One ``UPDATE ... FROM json_to_recordset()`` on PostgreSQL: the rows go as one JSON
    document, not one by one as psycopg's executemany sends them; the ORM's bulk update by
    primary key elsewhere.
    """
    if not rows:
        return
    if dialect_name(session) != "postgresql":
        from sqlalchemy import update

        session.execute(update(entity), rows)
        return
    table = entity.__table__
    names = list(rows[0])
    sets = ", ".join(f'"{n}" = r."{n}"' for n in names if n != "id")
    session.execute(
        text(
            f'UPDATE "{table.name}" SET {sets} FROM {_recordset(session, table, names)} '
            f'WHERE "{table.name}".id = r.id'
        ),
        {"rows": _rows_json(session, table, names, rows)},
    )


def _recordset(session: Session, table: Any, names: list[str]) -> str:
    """``json_to_recordset(:rows) AS r(name type, ...)`` with the columns' own types."""
    dialect = session.get_bind().dialect
    spec = ", ".join(f'"{n}" {table.c[n].type.compile(dialect=dialect)}' for n in names)
    return f"json_to_recordset(CAST(:rows AS JSON)) AS r({spec})"


def _rows_json(session: Session, table: Any, names: list[str], rows: list[dict[str, Any]]) -> str:
    """The rows as one JSON array, values as their column types bind them (UTC times...)."""
    convert = _bind_converters(session, table, names, json_columns=False)
    if any(convert):
        rows = [
            {n: row[n] if f is None else f(row[n]) for n, f in zip(names, convert, strict=True)}
            for row in rows
        ]

    def default(value: Any) -> Any:
        if isinstance(value, date):
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return jsoncodec.dumps(rows, default=default)


def _bind_converters(
    session: Session, table: Any, names: list[str], *, json_columns: bool
) -> list[Callable[[Any], Any] | None]:
    """Per column, what turns a value into what the database takes, or None to pass it as is.

    That is a type decorator's own conversion (UTC times), and with ``json_columns`` JSON text.
    """
    dialect = session.get_bind().dialect
    convert: list[Callable[[Any], Any] | None] = []
    for name in names:
        column_type = table.c[name].type
        if json_columns and isinstance(column_type, JSON):
            convert.append(_json_or_none)
        elif hasattr(column_type, "process_bind_param"):  # a TypeDecorator such as UTCDateTime
            convert.append(functools.partial(column_type.process_bind_param, dialect=dialect))
        else:
            convert.append(None)
    return convert


def _json_or_none(value: Any) -> str | None:
    return None if value is None else jsoncodec.dumps(value)
