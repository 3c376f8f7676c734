"""The SOAP operations: thin adapters from typed messages to :class:`ProfileService`.

Authentication (the ``ApiKey`` header) and the service instance for the call (``ctx.udc``)
are set up by :mod:`hub.soap.app`, which also turns every :class:`InputError` into a
``Client.*`` fault that names the field.
"""

from __future__ import annotations

import math
import re
from typing import Any

from spyne import Array, Boolean, Integer, Long, ServiceBase, Unicode, rpc

from hub.exceptions import InputError
from hub.profiles import search
from hub.profiles.service import ProfileService
from hub.soap.types import (
    ApiKey,
    FactResult,
    Field,
    FieldInfo,
    Profile,
    ProfileCollection,
    Requirement,
    UpdateResult,
    field_to_soap,
    profile_to_soap,
)

INTEGER = re.compile(r"^\s*[-+]?\d{1,18}\s*$")


def _service(ctx: Any) -> ProfileService:
    return ctx.udc


def fields_in(fields: list[Field] | None, where: str = "fields") -> dict[str, Any]:
    """Typed SOAP fields to JSON values; InputError names ``fields[i].value`` when wrong."""
    out: dict[str, Any] = {}
    for index, item in enumerate(fields or []):
        kind = str(item.type or "string")  # spyne's enum values compare by str()
        raw = item.value
        here = f"{where}[{index}]"
        if item.name in out:
            raise InputError("invalid_value", f"{here}.name", f"field {item.name!r} given twice")
        out[item.name] = _typed(kind, raw, here)
    return out


def _typed(kind: str, raw: str | None, where: str) -> Any:
    if kind == "null":
        return None
    if raw is None:
        if kind == "string":
            return ""
        raise InputError("missing_value", f"{where}.value", f"a {kind} field needs a value")
    if kind == "string":
        return raw
    if kind == "integer":
        if not INTEGER.match(raw):
            raise InputError("invalid_value", f"{where}.value", f"{raw!r} is not an integer")
        return int(raw)
    if kind == "number":
        try:
            number = float(raw)
        except ValueError:
            raise InputError(
                "invalid_value", f"{where}.value", f"{raw!r} is not a number"
            ) from None
        if not math.isfinite(number):
            raise InputError("invalid_value", f"{where}.value", "a number must be finite")
        return number
    if raw.strip().lower() not in ("true", "false", "1", "0"):
        raise InputError("invalid_value", f"{where}.value", f"{raw!r} is not true or false")
    return raw.strip().lower() in ("true", "1")


def requirements_in(requirements: list[Requirement] | None) -> list[search.Requirement]:
    """SOAP requirements as the service takes them; ``operator`` defaults to ``=``."""
    return [
        search.Requirement(
            fieldname=r.fieldname,
            value=r.value,
            operator=r.operator or "=",
            casesensitive=bool(r.casesensitive),
        )
        for r in requirements or []
    ]


class DatabaseService(ServiceBase):
    """Operations on the profile database (Copernica's ``Database_*``)."""

    __in_header__ = ApiKey

    @rpc(
        Unicode(min_occurs=1, nillable=False),
        Array(Field),
        Array(Unicode),
        Unicode,
        _returns=Profile,
    )
    def Database_createProfile(
        ctx: Any, email: str, fields: list[Field] | None, tags: list[str] | None, status: str | None
    ) -> Profile:
        """Create a profile; ``Client.AlreadyExists`` if one has that email."""
        profile = _service(ctx).create(email, fields_in(fields), tags or [], status)
        return profile_to_soap(profile)

    @rpc(
        Array(Requirement, min_occurs=1, nillable=False),
        Array(Field, min_occurs=1, nillable=False),
        Boolean(default=False),
        _returns=UpdateResult,
    )
    def Database_updateProfiles(
        ctx: Any, requirements: list[Requirement], fields: list[Field], create: bool | None
    ) -> UpdateResult:
        """Update every matching profile, or create one when none matches and ``create``."""
        result = _service(ctx).update_profiles(
            requirements_in(requirements), fields_in(fields), bool(create)
        )
        return UpdateResult(
            created=result.created,
            length=len(result.profiles),
            profile=[profile_to_soap(p) for p in result.profiles],
        )

    @rpc(
        Array(Requirement),
        Integer(ge=0),
        Integer(ge=1),
        _returns=ProfileCollection,
    )
    def Database_searchProfiles(
        ctx: Any, requirements: list[Requirement] | None, start: int | None, length: int | None
    ) -> ProfileCollection:
        """Profiles meeting every requirement, ordered by id, one page at a time."""
        page = _service(ctx).search(requirements_in(requirements), start or 0, length)
        return ProfileCollection(
            start=page.start,
            length=page.length,
            total=page.total,
            profile=[profile_to_soap(p) for p in page.profiles],
        )

    @rpc(_returns=Array(FieldInfo))
    def Database_fields(ctx: Any) -> list[FieldInfo]:
        """Every field name a requirement may use: columns, then custom fields in use."""
        return [FieldInfo(name=n, kind=k) for n, k in _service(ctx).known_fields()]


class ProfileOperations(ServiceBase):
    """Operations on one profile, named by its id (Copernica's ``Profile_*``)."""

    __in_header__ = ApiKey

    @rpc(Long(min_occurs=1, nillable=False), _returns=Profile)
    def Profile_get(ctx: Any, id: int) -> Profile:  # noqa: A002 - Copernica's parameter name
        """The profile with this id; Client.NotFound if there is none."""
        return profile_to_soap(_service(ctx).get(id))

    @rpc(Long(min_occurs=1, nillable=False), _returns=Array(Field))
    def Profile_fields(ctx: Any, id: int) -> list[Field]:  # noqa: A002
        """The profile's custom fields, typed, sorted by name; Client.NotFound if there is none."""
        profile = _service(ctx).get(id)
        return [field_to_soap(k, v) for k, v in sorted(profile["fields"].items())]

    @rpc(
        Long(min_occurs=1, nillable=False),
        Array(Field, min_occurs=1, nillable=False),
        _returns=Profile,
    )
    def Profile_updateFields(ctx: Any, id: int, fields: list[Field]) -> Profile:  # noqa: A002
        """Set the fields given (others are kept) and answer the profile.

        Faults: Client.NotFound; Client.ReservedField, Client.InvalidFieldName, Client.InvalidValue
        or Client.MissingValue, naming the field (``fields[0].value``).
        """
        return profile_to_soap(_service(ctx).update_fields(id, fields_in(fields)))

    @rpc(
        Long(min_occurs=1, nillable=False),
        Array(Unicode, min_occurs=1, nillable=False),
        _returns=Profile,
    )
    def Profile_addTags(ctx: Any, id: int, tags: list[str]) -> Profile:  # noqa: A002
        """Add tags the profile does not have yet, and answer the profile.

        Faults: Client.NotFound; Client.InvalidValue for more than 100 tags or a tag that is not 1
        to 100 characters.
        """
        return profile_to_soap(_service(ctx).change_tags(id, add=tags or []))

    @rpc(
        Long(min_occurs=1, nillable=False),
        Array(Unicode, min_occurs=1, nillable=False),
        _returns=Profile,
    )
    def Profile_removeTags(ctx: Any, id: int, tags: list[str]) -> Profile:  # noqa: A002
        """Remove the tags given (tags the profile lacks are ignored), and answer the profile.

        Faults: Client.NotFound; Client.InvalidValue for more than 100 tags or a tag that is not 1
        to 100 characters.
        """
        return profile_to_soap(_service(ctx).change_tags(id, remove=tags or []))

    @rpc(Long(min_occurs=1, nillable=False), _returns=Profile)
    def Profile_unsubscribe(ctx: Any, id: int) -> Profile:  # noqa: A002
        """Withdraw the profile's consent (status ``unsubscribed``) and answer the profile.

        Unsubscribing twice is harmless. Fault: Client.NotFound.
        """
        return profile_to_soap(_service(ctx).unsubscribe(id))

    @rpc(Long(min_occurs=1, nillable=False), _returns=Boolean)
    def Profile_remove(ctx: Any, id: int) -> bool:  # noqa: A002
        """Delete the profile; answers true. A ``profile.deleted`` fact is kept as its record.

        Facts about the contact still waiting to be evaluated are not acted on. Fault:
        Client.NotFound.
        """
        _service(ctx).delete(id)
        return True

    @rpc(
        Long(min_occurs=1, nillable=False),
        Unicode(min_occurs=1, nillable=False, max_len=128),
        Array(Field),
        Unicode(max_len=255),
        _returns=FactResult,
    )
    def Profile_postFact(
        ctx: Any,
        id: int,  # noqa: A002
        type: str,  # noqa: A002
        data: list[Field] | None,
        source_id: str | None,
    ) -> FactResult:
        """Store a fact about the profile for the rules; answers its id and status.

        The status is ``accepted``, or ``duplicate`` (with the first fact's id) when the
        ``source_id`` was used before. Faults: Client.NotFound; Client.InvalidValue for a ``type``
        that is not dotted lower-case words (``order.placed``) or a bad ``data`` value.
        """
        fact_id, status = _service(ctx).post_fact(id, type, fields_in(data, "data"), source_id)
        return FactResult(id=fact_id, status=status)
