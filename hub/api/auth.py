"""``require_api_key``: the API key check in front of the REST endpoints.

Every endpoint under ``/api/v1`` and ``/connectors`` that is not a webhook answers 401
without ``Authorization: Bearer <key>`` of an active key. The key is looked up in the
database on every request (one indexed statement, no cache), so a key revoked with ``hub
apikey revoke`` is refused by the next request in every process. :func:`forbidden_sources`
and :func:`forbidden_source` check the facts a key posts against the sources it may post.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, Protocol, TypeVar

from flask import Response, current_app, g, request

from connectors.registry import registry
from hub import runtime
from hub.apikeys import KeyRecord, find_api_key, source_refusal
from hub.web import json_error

F = TypeVar("F", bound=Callable[..., Any])


class _Sourced(Protocol):
    source: str


def require_api_key(view: F) -> F:
    """Answer 401 unless the request carries ``Authorization: Bearer <valid key>``.

    The view finds the key in ``g.api_key`` (a :class:`KeyRecord`) and its name in
    ``g.api_key_name``.
    """

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return _unauthorized("missing API key: send Authorization: Bearer <key>")
        with runtime.of(current_app).db.engine.connect() as connection:
            record = find_api_key(connection, key.strip())
        if record is None:
            return _unauthorized("invalid or revoked API key")
        g.api_key, g.api_key_name = record, record.name
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def forbidden_sources(facts: Iterable[_Sourced]) -> Response | None:
    """A 403 answer if the request's key may not post one of the facts' sources, else None.

    The answer names every offending fact (``errors``: index, ``field: "source"``, why), like
    a validation error; nothing of the request is stored.
    """
    key: KeyRecord = g.api_key
    connectors = registry().names
    errors = []
    for index, fact in enumerate(facts):
        why = source_refusal(key, fact.source, connectors)
        if why is not None:
            errors.append({"index": index, "field": "source", "message": why})
    if not errors:
        return None
    return json_error(
        403,
        "forbidden_source",
        f"{errors[0]['message']}; nothing was stored",
        field="source",
        errors=errors,
    )


def forbidden_source(source: str) -> Response | None:
    """A 403 answer if the request's key may not post a fact of ``source``, else None."""
    why = source_refusal(g.api_key, source, registry().names)
    if why is None:
        return None
    return json_error(403, "forbidden_source", why, field="source")


def _unauthorized(message: str) -> Response:
    response = json_error(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="hub"'
    return response
