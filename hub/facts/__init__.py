"""Facts: the one normalized shape of everything that happens to a contact, and its ingest.

``FactIn`` and ``ProfileRef`` are re-exported here because connector plugins build them
(``from hub.facts import FactIn``); hub code imports them from :mod:`hub.facts.schema`.
"""

from __future__ import annotations

from hub.facts.schema import ConsentIn, FactIn, ProfileRef

__all__ = ["ConsentIn", "FactIn", "ProfileRef"]
