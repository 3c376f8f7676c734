"""A record deleted in a source system: the profile's link to it goes (or the profile).

A connector says so with a fact of type :data:`RECORD_DELETED` about the record's external id
(``profile.create`` false, so an unknown id creates nobody) and ``data``::

    {"source": "exact", "external_id": "…", "record": "Accounts", "action": "unlink"}

``unlink`` (the default) removes that external id from the profile, which keeps its history;
``delete`` deletes the profile, as the profile API does. A source may only unlink its own
ids: ``data.source`` must be the fact's own (authenticated) source.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from hub.models import ExternalId, Profile

RECORD_DELETED = "record.deleted"
ACTIONS = ("unlink", "delete")
log = logging.getLogger(__name__)


def apply_record_deletions(session: Session, facts: Sequence[Any], profiles: Sequence[Any]) -> None:
    """Carry out the ``record.deleted`` facts of a batch, after its rules have matched.

    Run last in the batch's transaction: rules still see the profile as it was (a rule may
    react to the deletion), and the firings stored for it keep their rows.
    """
    doomed: set[int] = set()
    for fact, profile in zip(facts, profiles, strict=True):
        if fact.type != RECORD_DELETED or profile is None:
            continue
        data = fact.data or {}
        source = data.get("source") or fact.source
        external_id = data.get("external_id")
        action = data.get("action") or "unlink"
        if source != fact.source or not isinstance(external_id, str) or action not in ACTIONS:
            log.warning(
                "fact %s: record.deleted ignored: data.source must be the fact's source (%s), "
                "data.external_id text and data.action one of %s",
                fact.id,
                fact.source,
                ", ".join(ACTIONS),
            )
            continue
        if action == "delete":
            doomed.add(profile.id)
            continue
        session.execute(
            delete(ExternalId).where(
                ExternalId.profile_id == profile.id,
                ExternalId.source == source,
                ExternalId.external_id == external_id,
            )
        )
    if doomed:
        session.execute(delete(Profile).where(Profile.id.in_(sorted(doomed))))
