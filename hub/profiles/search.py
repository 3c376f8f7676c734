"""Searching profiles by requirements, compiled to SQL that runs on SQLite and PostgreSQL.

A requirement has Copernica's shape: ``fieldname``, ``value``, ``operator`` and
``casesensitive``.

Unlike Copernica, which skips a requirement on a field it does not know (and so returns more
profiles than asked), an unknown field name is an :class:`InputError` naming it.

Known fields are the profile's columns (:data:`COLUMNS`) plus every custom field name that
some profile has a value for (the union of keys of ``profiles.fields``). That set is what the
data really holds, whoever wrote it (SOAP, REST, a connector's fact, a rule's
``update_profile``), so there is no registry to keep in step. It is read with one query and
cached per process for :data:`FIELDS_TTL` seconds; a name missing from the cache triggers
one re-read (at most every :data:`FIELDS_REFRESH_MIN` seconds), so a field written a moment
ago elsewhere is found.
"""

from __future__ import annotations

import enum
import math
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    Numeric,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    not_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from hub.db import UNICODE_LOWER, Database
from hub.exceptions import InputError
from hub.facts.schema import FIELD_NAME
from hub.models import Profile
from hub.times import in_utc_range

FIELDS_TTL = 60.0
FIELDS_REFRESH_MIN = 2.0
NUMBER = re.compile(r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$")
MAX_REQUIREMENTS = 50


class Operator(enum.StrEnum):
    """Comparison of a requirement; ``<>`` is accepted as ``!=`` (Copernica spells both)."""

    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    LIKE = "LIKE"
    NOT_LIKE = "NOT LIKE"


class ColumnKind(enum.StrEnum):
    """How a column compares: as text, a whole number, a timestamp or a set of tags."""

    TEXT = "text"
    INTEGER = "integer"
    TIMESTAMP = "timestamp"
    TAGS = "tags"
    CUSTOM = "custom"


COLUMNS: dict[str, ColumnKind] = {
    "id": ColumnKind.INTEGER,
    "email": ColumnKind.TEXT,
    "status": ColumnKind.TEXT,
    "tags": ColumnKind.TAGS,
    "created_at": ColumnKind.TIMESTAMP,
    "updated_at": ColumnKind.TIMESTAMP,
}


@dataclass(frozen=True)
class Requirement:
    """One condition on one field; ``value`` is text, as Copernica sends it."""

    fieldname: str
    value: str
    operator: str = "="
    casesensitive: bool = False


def parse_operator(raw: str, where: str) -> Operator:
    """The operator named by ``raw`` (case and spacing ignored), or an InputError at ``where``."""
    text = " ".join((raw or "=").upper().split())
    if text == "<>":
        text = "!="
    try:
        return Operator(text)
    except ValueError:
        allowed = ", ".join(o.value for o in Operator)
        raise InputError(
            "invalid_operator", where, f"unknown operator {raw!r}; use one of {allowed}"
        ) from None


class FieldCatalog:
    """The custom field names profiles have values for, cached per process."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._names: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def names(self, session: Session) -> frozenset[str]:
        """The cached names, re-read when older than :data:`FIELDS_TTL`."""
        if time.monotonic() - self._read_at > FIELDS_TTL:
            self._refresh(session)
        return self._names

    def is_known(self, session: Session, name: str) -> bool:
        """True for a column or a custom field some profile has; re-reads once on a miss."""
        if name in COLUMNS or name in self.names(session):
            return True
        if time.monotonic() - self._read_at > FIELDS_REFRESH_MIN:
            self._refresh(session)
        return name in self._names

    def learn(self, names: set[str] | list[str]) -> None:
        """Add names this process just wrote, so a search right after finds them."""
        with self._lock:
            self._names = self._names | frozenset(names)

    def _refresh(self, session: Session) -> None:
        names = frozenset(custom_field_names(session))
        with self._lock:
            self._names = names
            self._read_at = time.monotonic()


def custom_field_names(session: Session) -> list[str]:
    """Every key of ``profiles.fields`` in use, sorted (one query, per dialect)."""
    if session.get_bind().dialect.name == "postgresql":
        sql = (
            "SELECT DISTINCT json_object_keys(fields) AS k FROM profiles"
            " WHERE json_typeof(fields) = 'object' ORDER BY k"
        )
    else:
        sql = "SELECT DISTINCT j.key AS k FROM profiles, json_each(profiles.fields) AS j ORDER BY k"
    return [row[0] for row in session.execute(text(sql))]


def build_filter(
    session: Session,
    catalog: FieldCatalog,
    requirements: list[Requirement],
    new_keys_allowed: bool = False,
) -> ColumnElement[bool]:
    """One SQL condition for all ``requirements`` (AND); InputError names the bad one.

    ``new_keys_allowed`` accepts an ``=`` requirement on a custom field no profile has yet
    (an upsert that may create the first profile with that key field).
    """
    if len(requirements) > MAX_REQUIREMENTS:
        raise InputError(
            "invalid_value", "requirements", f"at most {MAX_REQUIREMENTS} requirements per search"
        )
    dialect = session.get_bind().dialect.name
    clauses = []
    for index, req in enumerate(requirements):
        where = f"requirements[{index}]"
        name = (req.fieldname or "").strip()
        if not name:
            raise InputError("missing_value", f"{where}.fieldname", "a field name is required")
        op = parse_operator(req.operator, f"{where}.operator")
        new_key = new_keys_allowed and op is Operator.EQ and FIELD_NAME.fullmatch(name)
        if not new_key and not catalog.is_known(session, name):
            raise InputError(
                "unknown_field",
                f"{where}.fieldname",
                f"unknown field {name!r}: no profile column or custom field has that name",
            )
        if req.value is None:
            raise InputError("missing_value", f"{where}.value", "a value is required")
        if "\x00" in str(req.value):
            raise InputError("invalid_value", f"{where}.value", "must not contain NUL characters")
        kind = COLUMNS.get(name, ColumnKind.CUSTOM)
        clauses.append(_clause(dialect, name, kind, op, req, where))
    return and_(true(), *clauses)


def _clause(
    dialect: str, name: str, kind: ColumnKind, op: Operator, req: Requirement, where: str
) -> ColumnElement[bool]:
    value = str(req.value)
    if kind is ColumnKind.TAGS:
        return _tags_clause(dialect, op, value, where)
    if kind is ColumnKind.INTEGER:
        if op in (Operator.LIKE, Operator.NOT_LIKE) or not re.fullmatch(r"-?\d{1,18}", value):
            raise InputError(
                "invalid_value", f"{where}.value", f"{name} compares whole numbers, got {value!r}"
            )
        return _compare(getattr(Profile, name), op, int(value))
    if kind is ColumnKind.TIMESTAMP:
        if op in (Operator.LIKE, Operator.NOT_LIKE):
            raise InputError("invalid_operator", f"{where}.operator", f"{name} has no LIKE")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is None or not in_utc_range(moment):
            raise InputError(
                "invalid_value",
                f"{where}.value",
                f"{name} needs an ISO 8601 time of the years 1 to 9999 (UTC), got {value!r}",
            ) from None
        return _compare(getattr(Profile, name), op, moment)
    column = getattr(Profile, name) if kind is ColumnKind.TEXT else _field_text(dialect, name)
    as_text: ColumnElement[Any] = func.coalesce(column, "")  # a missing field compares as ""
    if op in (Operator.LT, Operator.LE, Operator.GT, Operator.GE) and NUMBER.match(value):
        if not math.isfinite(float(value)):
            raise InputError("invalid_value", f"{where}.value", f"{value!r} is too large a number")
        return _compare(_as_number(dialect, as_text), op, float(value))
    # Emails are stored lower-cased and are one contact whatever their case: ``casesensitive``
    # would only make a mixed-case value miss the profile it names.
    casesensitive = req.casesensitive and name != "email"
    if op in (Operator.LIKE, Operator.NOT_LIKE):
        like = _like(dialect, as_text, value, casesensitive)
        return not_(like) if op is Operator.NOT_LIKE else like
    if not casesensitive:
        as_text, value = _lower(dialect, as_text), value.lower()
    return _compare(as_text, op, value)


def _lower(dialect: str, value: Any) -> ColumnElement[Any]:
    """``value`` in lower case, every letter of it: SQLite's own ``lower()`` knows only ASCII.

    On SQLite this is Python's ``str.lower`` (registered on each connection by
    :mod:`hub.db`), the one the compared value is lowered with; PostgreSQL's ``lower()``
    follows the database's ``LC_CTYPE`` (a UTF-8 locale or ``C.UTF-8`` lowers ``É``).
    """
    if dialect == "postgresql":
        return func.lower(value)
    return getattr(func, UNICODE_LOWER)(value)


def _compare(left: Any, op: Operator, right: Any) -> ColumnElement[bool]:
    match op:
        case Operator.EQ:
            return left == right
        case Operator.NE:
            return left != right
        case Operator.LT:
            return left < right
        case Operator.LE:
            return left <= right
        case Operator.GT:
            return left > right
        case _:
            return left >= right


def _field_text(dialect: str, name: str) -> ColumnElement[Any]:
    """A custom field as text: ``true``/``false`` for booleans, NULL when absent or null."""
    if dialect == "postgresql":
        return Profile.fields.op("->>", return_type=String())(literal(name, String))
    path = literal(f'$."{name}"', String)
    kind = func.json_type(Profile.fields, path)
    return case(
        (kind == "true", "true"),
        (kind == "false", "false"),
        (kind == "null", None),
        else_=cast(func.json_extract(Profile.fields, path), String),
    )


def _as_number(dialect: str, value: Any) -> ColumnElement[Any]:
    """The text as a number when it looks like one, else NULL (so it matches nothing)."""
    if dialect == "postgresql":
        return case((value.op("~")(NUMBER.pattern), cast(value, Numeric)), else_=None)
    valid = case((func.json_valid(value) == 1, func.json_type(value)), else_=None)
    return case((valid.in_(["integer", "real"]), cast(value, Float)), else_=None)


def _like(dialect: str, value: Any, pattern: str, casesensitive: bool) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return value.like(pattern) if casesensitive else value.ilike(pattern)
    if not casesensitive:
        return _lower(dialect, value).like(pattern.lower())
    # SQLite's LIKE ignores case; GLOB is its case-sensitive twin with * and ? wildcards.
    glob = "".join(
        {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(c, c) for c in pattern
    )
    return value.op("GLOB")(glob)


def _tags_clause(dialect: str, op: Operator, tag: str, where: str) -> ColumnElement[bool]:
    if op not in (Operator.EQ, Operator.NE):
        raise InputError(
            "invalid_operator",
            f"{where}.operator",
            "tags supports = (has the tag) and != (lacks the tag)",
        )
    if dialect == "postgresql":
        has = cast(Profile.tags, JSONB).contains([tag])
    else:
        each = func.json_each(Profile.tags).table_valued("value")
        has = exists(select(1).select_from(each).where(each.c.value == tag))
    return has if op is Operator.EQ else not_(has)
