"""The document rules see, built in one place for the evaluator, the tools and history.

A document is ``{"type", "fact": {id, type, source, source_id, occurred_at}, "data": {...},
"profile": {...}}``. The evaluator, the simulator, the scenario runner, back-tests, history
conditions and the "does any rule want this hub fact" probe all build it here, so that a rule
reads the same paths wherever it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

FACT_KEYS = ("id", "type", "source", "source_id", "occurred_at")


class HasDict(Protocol):
    """A fact or profile row (ORM object or plain row) that can give itself as rules see it."""

    def as_dict(self) -> dict[str, Any]:
        """The row as rules see it (as :func:`hub.models.fact_dict` or ``profile_dict`` give it)."""
        ...


def document(fact: Mapping[str, Any], profile: Mapping[str, Any] | None) -> dict[str, Any]:
    """The document of ``fact`` (as :func:`hub.models.fact_dict` gives it) about ``profile``."""
    return {
        "type": fact["type"],
        "fact": {k: fact[k] for k in FACT_KEYS if k in fact},
        "data": fact.get("data") or {},
        "profile": profile if profile is not None else {},
    }


def fact_document(fact: HasDict, profile: HasDict | None) -> dict[str, Any]:
    """The document of a stored fact and its profile."""
    return document(fact.as_dict(), profile.as_dict() if profile is not None else None)


def history_document(
    fact_id: int,
    fact_type: str,
    source: str,
    source_id: str | None,
    occurred_at: datetime,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    """A fact of a profile's past as history conditions read it (no profile, its time parsed)."""
    doc = document(
        {
            "id": fact_id,
            "type": fact_type,
            "source": source,
            "source_id": source_id,
            "occurred_at": occurred_at.isoformat(),
            "data": dict(data or {}),
        },
        None,
    )
    del doc["profile"]
    doc["_at"] = occurred_at  # parsed once, for the windows (see conditions._position)
    return doc


def template_context(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What templates see for a document: ``fact`` (with its ``data``) and ``profile``."""
    return {"fact": doc["fact"] | {"data": doc["data"]}, "profile": doc["profile"]}
