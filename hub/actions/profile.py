"""Old job paths of the profile actions, kept for jobs already in Redis.

RQ stores a job's function by dotted path; batches and follow-ups enqueued before the layout
by concept name ``hub.actions.profile.<action>``. New jobs use the modules of each action.
"""

from __future__ import annotations

from hub.actions.create_profile import create_profile
from hub.actions.subscription import resubscribe, unsubscribe
from hub.actions.update_profile import update_profile

__all__ = ["create_profile", "resubscribe", "unsubscribe", "update_profile"]
