"""The fault suite: the hub's real processes on PostgreSQL and Redis, with faults injected."""
