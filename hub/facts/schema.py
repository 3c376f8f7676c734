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

FACT_TYPE = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)+$")
SOURCE = re.compile(r"^[a-z0-9_-]{1,64}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ProfileRef(BaseModel):
    """Who the fact is about: an email, ids in other systems, or both."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320)
    external_ids: dict[str, str] = Field(default_factory=dict)
    status: Literal["subscribed", "unsubscribed", "bounced"] | None = None
    fields: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        return json_numbers_only(value, "fields")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if not EMAIL.match(value):
            raise ValueError("not a valid email address")
        return value

    @field_validator("external_ids")
    @classmethod
    def _external_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for source, ext_id in value.items():
            if not SOURCE.match(source):
                raise ValueError(f"source name {source!r} must match [a-z0-9_-]{{1,64}}")
            if not ext_id or len(ext_id) > 255:
                raise ValueError(f"id for {source!r} must be 1 to 255 characters")
        return value

    @model_validator(mode="after")
    def _identifies_someone(self) -> ProfileRef:
        if not self.email and not self.external_ids:
            raise ValueError("needs an email or at least one external id")
        return self


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
        return json_numbers_only(value, "data")

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if not FACT_TYPE.match(value):
            raise ValueError("must be dotted lower-case words, such as order.placed")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not SOURCE.match(value):
            raise ValueError("must be 1 to 64 of a-z, 0-9, _ and -")
        return value

    @field_validator("source_id", mode="before")
    @classmethod
    def _source_id(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("occurred_at")
    @classmethod
    def _occurred_at(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def json_numbers_only(value: Any, path: str) -> Any:
    """``value`` unchanged, or ValueError naming the first NaN or Infinity inside it.

    Python's json module reads them, but they are not JSON: the database would refuse the
    fact after it was answered, or store something else.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path} is {value}: NaN and Infinity are not JSON numbers")
    if isinstance(value, dict):
        for key, item in value.items():
            json_numbers_only(item, f"{path}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            json_numbers_only(item, f"{path}[{n}]")
    return value


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
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        out.append(FieldError(index=index, field=field, message=message))
    return out
