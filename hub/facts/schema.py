"""The fact: one normalized thing that happened to a contact, whatever its source.

Every entry point (REST, SOAP, connectors, forms, imports) builds :class:`FactIn` and hands
it to :mod:`hub.ingest`; validation errors name the fact's index and the field.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from hub.times import in_utc_range

# Use ``fullmatch``: ``$`` also matches before a final line break ("order.placed\n").
FACT_TYPE = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)+$")
SOURCE = re.compile(r"^[a-z0-9_-]{1,64}$")
EMAIL = re.compile(r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# The profile's columns, and its external ids: never custom field names.
RESERVED_FIELDS = frozenset(
    {"id", "email", "status", "tags", "created_at", "updated_at", "external_ids"}
)
MAX_FIELD_TEXT = 10_000
MAX_FIELD_ITEMS = 100  # values in a list-valued custom field
# How deep a fact's ``data`` may nest. Deeper documents are refused at the door: the hub walks
# data recursively (conditions, templates, the JSON encoder, which stops at 254 levels).
MAX_DEPTH = 32


def aware_time(value: datetime | None) -> datetime | None:
    """A time a caller sent, made aware (naive is UTC); ValueError if UTC cannot hold it."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if not in_utc_range(value):
        raise ValueError("is outside the years 1 to 9999 once converted to UTC")
    return value


MAX_EVIDENCE = 20  # named pieces of proof a consent statement may carry besides its own fields
EvidenceValue = str | int | float | bool | None


class ConsentIn(BaseModel):
    """A source's statement of marketing consent, with what proves it.

    ``subscribed`` from a plain sync (a shop's flag read as it is now) gives consent to a
    profile that had none (``unconfirmed``), never back to an ``unsubscribed`` or ``bounced``
    one: that takes ``explicit``, a statement that the contact opted in just now (a vendor's
    opt-in flag that changed to yes, a confirmed form, an API call that says so). A withdrawal
    (``unsubscribed``) always applies. Every statement is kept in the profile's consent ledger
    (``hub.profiles.consent``), applied or not.
    """

    model_config = ConfigDict(extra="forbid")

    status: Literal["subscribed", "unsubscribed"]
    explicit: bool = False
    proof: str = Field(min_length=1, max_length=2000)  # the vendor's flag, or the text shown
    at: datetime | None = None  # when it was given; the fact's ``occurred_at`` by default
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=1000)
    evidence: dict[str, EvidenceValue] = Field(default_factory=dict)

    @field_validator("at")
    @classmethod
    def _at(cls, value: datetime | None) -> datetime | None:
        return aware_time(value)

    @field_validator("evidence")
    @classmethod
    def _evidence(cls, value: dict[str, EvidenceValue]) -> dict[str, EvidenceValue]:
        if len(value) > MAX_EVIDENCE:
            raise ValueError(f"at most {MAX_EVIDENCE} entries")
        for key, item in value.items():
            if not FIELD_NAME.fullmatch(key):
                raise ValueError(f"{key!r}: a name is a letter or _, then letters, digits, _")
            if isinstance(item, str) and len(item) > MAX_FIELD_TEXT:
                raise ValueError(f"{key!r}: at most {MAX_FIELD_TEXT} characters")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{key!r}: a number must be finite")
        return value


class ProfileRef(BaseModel):
    """Who the fact is about: an email, ids in other systems, or both.

    ``status`` is the older way to state consent: ``subscribed`` or ``unsubscribed`` there is
    read as a :class:`ConsentIn` (not explicit, proof ``profile.status``); ``bounced`` marks the
    address as bouncing. A source that states nothing leaves consent as it is; a profile it
    creates is ``unconfirmed``.
    """

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320)
    external_ids: dict[str, str] = Field(default_factory=dict)
    status: Literal["subscribed", "unsubscribed", "bounced"] | None = None
    consent: ConsentIn | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    # False: about a contact the hub may already know, never a reason to create one (a record
    # deleted in a source, an import in update-only mode); unknown, the fact acts on nobody
    create: bool = True

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, item in value.items():
            problem = custom_field_error(name, item)
            if problem is not None:  # the field's name goes into the error's location
                raise PydanticCustomError(
                    problem[0], "{message}", {"key": name, "message": problem[1]}
                )
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if not EMAIL.fullmatch(value):
            raise ValueError("not a valid email address")
        return value

    @field_validator("external_ids")
    @classmethod
    def _external_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for source, ext_id in value.items():
            if not SOURCE.fullmatch(source):
                raise ValueError(f"source name {source!r} must match [a-z0-9_-]{{1,64}}")
            if not ext_id or len(ext_id) > 255 or "\x00" in ext_id:
                raise ValueError(f"id for {source!r} must be 1 to 255 characters, without NUL")
        return value

    @model_validator(mode="after")
    def _identifies_someone(self) -> ProfileRef:
        if not self.email and not self.external_ids:
            raise ValueError("needs an email or at least one external id")
        if self.consent is not None and self.status is not None:
            raise ValueError("state consent once: in consent or in status, not both")
        return self

    def consent_statement(self) -> ConsentIn | None:
        """The consent this reference states, from ``consent`` or the older ``status``."""
        if self.consent is not None:
            return self.consent
        if self.status in ("subscribed", "unsubscribed"):
            return ConsentIn(status=self.status, proof="profile.status")
        return None


class FactIn(BaseModel):
    """A fact as a caller sends it, before it is stored."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(max_length=128)
    source: str = "api"
    source_id: str | None = Field(default=None, min_length=1, max_length=255)
    occurred_at: datetime | None = None
    profile: ProfileRef
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("data")
    @classmethod
    def _data(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_json_value(value, "data")

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if not FACT_TYPE.fullmatch(value):
            raise ValueError("must be dotted lower-case words, such as order.placed")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not SOURCE.fullmatch(value):
            raise ValueError("must be 1 to 64 of a-z, 0-9, _ and -")
        return value

    @field_validator("source_id", mode="before")
    @classmethod
    def _source_id(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("source_id")
    @classmethod
    def _source_id_text(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _occurred_at(cls, value: datetime | None) -> datetime | None:
        return aware_time(value)


def check_json_value(value: Any, path: str) -> Any:
    """``value`` unchanged, or ValueError naming the first NaN or Infinity inside it.

    Python's json module reads them, but they are not JSON: the database would refuse the
    fact after it was answered, or store something else. A document nested deeper than
    :data:`MAX_DEPTH` is refused too (walked without recursion, so any depth gets an answer).
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{where} is {item}: NaN and Infinity are not JSON numbers")
        if isinstance(item, dict):
            children: Any = ((f"{where}.{k}", v) for k, v in item.items())
        elif isinstance(item, list):
            children = ((f"{where}[{n}]", v) for n, v in enumerate(item))
        else:
            continue
        if depth >= MAX_DEPTH:
            raise ValueError(f"{path} is nested more than {MAX_DEPTH} levels deep")
        stack.extend((v, w, depth + 1) for w, v in reversed(list(children)))
    return value


def custom_field_error(name: Any, value: Any) -> tuple[str, str] | None:
    """What is wrong with one custom field of a profile, as ``(code, message)``; None if fine.

    The one rule for every door a field value comes through: the profile API (REST and SOAP)
    and a fact's ``profile.fields`` (an API client, a connector, a form). A name is an
    identifier and not a column; a value is text (at most :data:`MAX_FIELD_TEXT` characters),
    a finite number, a boolean, null, or a flat list of up to :data:`MAX_FIELD_ITEMS` of those
    (a connector's roles or multi-select values), so that searches, SOAP's typed fields and
    rules read every stored value the same way. Objects and lists of lists are refused.
    """
    if name in RESERVED_FIELDS:
        return "reserved_field", f"{name!r} is a profile column, not a custom field"
    if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
        return (
            "invalid_field_name",
            "a field name is a letter or _ followed by up to 63 letters, digits or _",
        )
    if isinstance(value, list):
        if len(value) > MAX_FIELD_ITEMS:
            return "invalid_value", f"a list holds at most {MAX_FIELD_ITEMS} values"
        for item in value:
            if isinstance(item, dict | list):
                return "invalid_value", _NOT_A_VALUE
            problem = _scalar_error(item)
            if problem is not None:
                return problem
        return None
    return _scalar_error(value)


_NOT_A_VALUE = "a field value is text, a number, a boolean, null or a list of those"


def _scalar_error(value: Any) -> tuple[str, str] | None:
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else ("invalid_value", "a number must be finite")
    if isinstance(value, str):
        if len(value) > MAX_FIELD_TEXT:
            return "invalid_value", f"at most {MAX_FIELD_TEXT} characters"
        if "\x00" in value:
            return "invalid_value", "text must not contain NUL characters"
        return None
    return "invalid_value", _NOT_A_VALUE


class FieldError(BaseModel):
    """One problem with one field of one fact."""

    index: int
    field: str
    message: str


def validate_facts(items: list[Any]) -> tuple[list[FactIn], list[FieldError]]:
    """Validate every item; return the valid facts and every error, each naming index and field."""
    facts: list[FactIn] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(FieldError(index=index, field="", message="a fact must be a JSON object"))
            continue
        try:
            facts.append(FactIn.model_validate(item))
        except ValidationError as exc:
            errors.extend(_field_errors(index, exc))
    return facts, errors


def _field_errors(index: int, exc: ValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        loc = [*err["loc"], *([err["ctx"]["key"]] if "key" in err.get("ctx", {}) else [])]
        field = ".".join(str(p) for p in loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        out.append(FieldError(index=index, field=field, message=message))
    return out
