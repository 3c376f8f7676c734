"""API keys: created once, shown once, stored as SHA-256 digests, compared in constant time.

A key may be scoped to fact sources. The ``source`` of a fact is its idempotency namespace
(``source`` + ``source_id``) and tells rules where it came from, so the sources of the
connectors (``magento``, ``drupal``, ...) and the hub's own (``hub``) are reserved: a key
posting such a fact could pre-empt a connector's keys or forge the hub's facts. An unscoped
key posts any other source; a scoped key posts only the sources it lists, and listing a
connector's source is how a key is allowed to post for that connector. No key posts ``hub``.

Keys are looked up in the database on every request, never cached: a key revoked is
refused by the very next request, in every process.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from hub.models import ApiKey
from hub.times import utcnow

KEY_PREFIX = "hub_"
HUB_SOURCE = "hub"  # the facts the hub raises itself
SOURCE = re.compile(r"^[a-z0-9_-]{1,64}$")  # as a fact's source (hub.facts.schema)


@dataclass(frozen=True)
class KeyRecord:
    """What a request needs of its key: who it is and what it may post."""

    id: int
    name: str
    sources: tuple[str, ...] | None  # None: any source that is not reserved


def digest(key: str) -> str:
    """The SHA-256 digest a key is stored by."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_sources(sources: Iterable[str]) -> tuple[str, ...]:
    """The scope of a new key, in order, without repeats; ``ValueError`` names a bad source."""
    clean: list[str] = []
    for source in sources:
        if not SOURCE.match(source):
            raise ValueError(f"source {source!r} must be 1 to 64 of a-z, 0-9, _ and -")
        if source == HUB_SOURCE:
            raise ValueError(f"source {HUB_SOURCE!r} is the hub's own; no key may post it")
        if source not in clean:
            clean.append(source)
    return tuple(clean)


def create_api_key(session: Session, name: str, sources: Sequence[str] | None = None) -> str:
    """Store a new key under ``name`` and return the key itself (it is not kept).

    ``sources``: the fact sources the key may post (None or empty: any not reserved); a
    ``ValueError`` names one that is not a valid source.
    """
    scope = list(check_sources(sources)) if sources else None
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, prefix=key[:12], key_hash=digest(key), sources=scope))
    return key


def check_api_key(session: Session, key: str) -> KeyRecord | None:
    """The active key ``key`` is, or None: :func:`find_api_key` on the session's connection."""
    return find_api_key(session.connection(), key)


# built once: a request's key look-up is one statement
_ACTIVE_KEYS = select(ApiKey.id, ApiKey.name, ApiKey.key_hash, ApiKey.sources).where(
    ApiKey.prefix == bindparam("prefix"), ApiKey.revoked_at.is_(None)
)


def find_api_key(connection: Connection, key: str) -> KeyRecord | None:
    """The active key ``key`` is, or None; one Core statement (every request makes it).

    Looked up by a short prefix, then compared digest to digest with ``hmac.compare_digest``
    so the answer time does not tell how much of a guessed key was right.
    """
    key_digest = digest(key)
    found = None
    rows = connection.execute(_ACTIVE_KEYS, {"prefix": key[:12]})
    for key_id, name, key_hash, sources in rows:
        if hmac.compare_digest(key_hash, key_digest):
            found = KeyRecord(key_id, name, tuple(sources) if sources is not None else None)
    return found


def source_refusal(key: KeyRecord, source: str, connectors: Collection[str]) -> str | None:
    """Why ``key`` may not post a fact of ``source``, or None when it may.

    Args:
        key: the key the request came with.
        source: the fact's source.
        connectors: the names of the installed connectors (``connectors.registry``), whose
            sources are reserved for them.
    """
    if source == HUB_SOURCE:
        return f"source {source!r} is reserved for the facts the hub raises itself"
    if key.sources is not None:
        if source in key.sources:
            return None
        allowed = ", ".join(key.sources)
        return f"source {source!r} is not one this API key may post (it may post: {allowed})"
    if source in connectors:
        return (
            f"source {source!r} is reserved for the {source} connector; an API key may post it "
            f"only if scoped to it (hub apikey create NAME --source {source})"
        )
    return None


def list_api_keys(session: Session) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_api_key(session: Session, name: str) -> bool:
    """Revoke the key called ``name``; False if there is none (or it was revoked already)."""
    key = session.scalar(
        select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)).with_for_update()
    )
    if key is None:
        return False
    key.revoked_at = utcnow()
    return True
