"""The typed SOAP messages (document/literal): every request and answer has a schema type.

Names follow Copernica's SOAP API where it has one (``requirement`` with ``fieldname``,
``value``, ``operator``, ``casesensitive``; a search answers ``start``, ``length``, ``total``
and a collection of ``profile``), so a client migrating from it recognises them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from spyne import Array, Boolean, ComplexModel, DateTime, Enum, Integer, Long, Unicode

TNS = "urn:contact-hub:soap:1"

FieldType = Enum(
    "string", "integer", "number", "boolean", "null", type_name="FieldType", __namespace__=TNS
)


class Model(ComplexModel):
    """Base of the SOAP types: each is declared in the hub's namespace, :data:`TNS`."""

    __namespace__ = TNS


class ApiKey(Model):
    """The SOAP header that authenticates a call: ``<hub:ApiKey><hub:key>...``."""

    key = Unicode(min_occurs=1, nillable=False, max_len=200)


class Field(Model):
    """One field value; ``type`` says how ``value`` (always text on the wire) is read."""

    name = Unicode(min_occurs=1, nillable=False, max_len=64)
    value = Unicode(max_len=10_000)
    type = FieldType


class Requirement(Model):
    """A search condition: ``fieldname`` ``operator`` ``value`` (Copernica's shape)."""

    fieldname = Unicode(min_occurs=1, nillable=False, max_len=64)
    value = Unicode(min_occurs=1, nillable=False, max_len=10_000)
    operator = Unicode(max_len=10, default="=")
    casesensitive = Boolean(default=False)


class ExternalId(Model):
    """The id a profile has in another system."""

    source = Unicode
    id = Unicode


class Profile(Model):
    """A contact as the hub holds it."""

    id = Long
    email = Unicode
    status = Unicode
    fields = Array(Field)
    tags = Array(Unicode)
    external_ids = Array(ExternalId)
    created_at = DateTime
    updated_at = DateTime


class ProfileCollection(Model):
    """One page of profiles: ``start``, ``length`` returned, ``total`` matching."""

    start = Integer
    length = Integer
    total = Integer
    profile = Array(Profile)


class UpdateResult(Model):
    """What ``Database_updateProfiles`` did: ``created`` a profile, or updated ``length``."""

    created = Boolean
    length = Integer
    profile = Array(Profile)


class FieldInfo(Model):
    """A field a requirement may name: a profile column or a custom field."""

    name = Unicode
    kind = Unicode


class FactResult(Model):
    """A stored fact: its id, and ``accepted`` or ``duplicate`` (same ``source_id`` before)."""

    id = Long
    status = Unicode


def field_to_soap(name: str, value: Any) -> Field:
    """A stored JSON value as a typed :class:`Field`."""
    if value is None:
        return Field(name=name, value=None, type="null")
    if isinstance(value, bool):
        return Field(name=name, value="true" if value else "false", type="boolean")
    if isinstance(value, int):
        return Field(name=name, value=str(value), type="integer")
    if isinstance(value, float):
        return Field(name=name, value=repr(value), type="number")
    return Field(name=name, value=str(value), type="string")


def profile_to_soap(profile: dict[str, Any]) -> Profile:
    """A profile as the service gives it, as the SOAP :class:`Profile` (fields typed, by name)."""
    return Profile(
        id=profile["id"],
        email=profile["email"],
        status=profile["status"],
        fields=[field_to_soap(k, v) for k, v in sorted(profile["fields"].items())],
        tags=list(profile["tags"]),
        external_ids=[ExternalId(source=s, id=i) for s, i in profile["external_ids"].items()],
        created_at=datetime.fromisoformat(profile["created_at"]),
        updated_at=datetime.fromisoformat(profile["updated_at"]),
    )
