"""Small helpers shared by the built-in connectors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from connectors.exceptions import PayloadInvalid
from hub.facts import FactIn

_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d+)?\)/$")


def parse_time(value: Any, field: str) -> datetime:
    """A timestamp as remotes send them: ISO 8601, ``Y-m-d H:i:s`` (UTC), epoch, ``/Date(ms)/``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or not value.strip():
        raise PayloadInvalid(field, "expected a date and time")
    text = value.strip()
    match = _MS_DATE.match(text)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadInvalid(field, f"{text!r} is not a date and time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def require(obj: Any, key: str, path: str) -> Any:
    """``obj[key]``, or :class:`PayloadInvalid` naming ``path.key`` when it is absent."""
    where = f"{path}.{key}" if path else key
    if not isinstance(obj, dict):
        raise PayloadInvalid(path or "", "expected an object")
    value = obj.get(key)
    if value is None or value == "":
        raise PayloadInvalid(where, "is required")
    return value


def as_dict(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadInvalid(path, "expected an object")
    return value


def as_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise PayloadInvalid(path, "expected a list")
    return value


def email_or_none(value: Any) -> str | None:
    if isinstance(value, str) and "@" in value:
        return value.strip().lower()
    return None


def compact(mapping: dict[str, Any]) -> dict[str, Any]:
    """The mapping without ``None`` values (a remote's empty field sets nothing)."""
    return {k: v for k, v in mapping.items() if v is not None}


def make_fact(field_names: dict[str, str] | None = None, **values: Any) -> FactIn:
    """Build a :class:`FactIn`; a validation error names the payload field it came from.

    ``field_names`` maps fact paths (``profile.email``) to the remote's own field names
    (``customer.email``) so that a 400 answer points at what the sender can fix.
    """
    try:
        return FactIn.model_validate(values)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        path = ".".join(str(p) for p in err["loc"])
        names = field_names or {}
        where = names.get(path) or names.get(path.rsplit(".", 1)[0]) or path
        raise PayloadInvalid(where, err["msg"].removeprefix("Value error, ")) from None
